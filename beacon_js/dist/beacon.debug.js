/* edu-beacon 0.1.0, debug build */
(function() {
  // src/util.js
  var cfg = {};
  var early = [];
  function log(message, data) {
    if (early) early.push([message, data]);
    else if (cfg.debug) {
      try {
        console.log("[edu-beacon] " + message, data == null ? "" : data);
      } catch (e) {
      }
    }
  }
  function logReady() {
    var held = early;
    early = 0;
    held.forEach(function(line) {
      log(line[0], line[1]);
    });
  }
  function safe(fn) {
    return function() {
      try {
        return fn.apply(this, arguments);
      } catch (e) {
        log("error", e);
      }
    };
  }
  function on(target, type, fn) {
    target.addEventListener(type, safe(fn));
  }
  var memory = {};
  function load(key) {
    var value2;
    try {
      value2 = JSON.parse(localStorage.getItem("eb_" + key));
    } catch (e) {
    }
    return value2 == null ? memory[key] : value2;
  }
  function save(key, value2) {
    memory[key] = value2;
    try {
      if (value2 == null) localStorage.removeItem("eb_" + key);
      else localStorage.setItem("eb_" + key, JSON.stringify(value2));
    } catch (e) {
    }
  }
  function now() {
    return Date.now();
  }
  function rid() {
    return Math.random().toString(36).slice(2, 10) + now().toString(36);
  }
  function clip(v, max) {
    return v == null ? v : String(v).slice(0, max).replace(/[\ud800-\udbff]$/, "");
  }

  // src/session.js
  var TIMEOUT = 30 * 60 * 1e3;
  function touch(s, t, pageview2, alive) {
    if (!s || !alive && t - s.t > TIMEOUT) s = { i: rid(), n: 0 };
    if (pageview2) s.n++;
    s.t = t;
    return s;
  }
  function session(pageview2, alive) {
    var s = touch(load("s"), now(), pageview2, alive);
    save("s", s);
    return s;
  }

  // src/url.js
  var STRIP = ["ticket", "token", "access_token", "sessionid", "jsessionid", "password", "eb_debug"];
  function cleanUrl(href, strip, keepHash, base) {
    if (!href) return "";
    var url2 = new URL(href, base);
    var params = url2.searchParams;
    if (strip == "*") url2.search = "";
    else STRIP.concat(strip || []).forEach(function(name) {
      if (params.has(name)) params["delete"](name);
    });
    url2.pathname = url2.pathname.replace(/;jsessionid=[^/]*/i, "");
    if (!keepHash) url2.hash = "";
    return url2.href;
  }
  function endpoint(host, scriptSrc) {
    return new URL(host ? (/\/\//.test(host) ? host : "//" + host).replace(/\/*$/, "/c") : "c", scriptSrc).href;
  }

  // src/queue.js
  var CAP = 50;
  var MAX_AGE = 24 * 3600 * 1e3;
  var MAX_BODY = 15e3;
  function enqueue(queue, events, t) {
    return (queue || []).concat(events).filter(function(e) {
      e.re = 1;
      return t - e.ts < MAX_AGE;
    }).slice(-CAP);
  }

  // src/transport.js
  var script = document.currentScript || {};
  var left;
  function send(events, leaving) {
    left = leaving;
    if (!events.length) return;
    var url2 = endpoint(cfg.host, script.src || location.href);
    var body = JSON.stringify(events);
    var fetch = window.fetch;
    var half = events.length >> 1;
    if (body.length * 3 > MAX_BODY && half) return send(events.slice(0, half), leaving), send(events.slice(half), leaving);
    if (navigator.onLine === false) return keep(events, "offline");
    log("send to " + url2, events);
    if (leaving && beacon(url2, body)) return;
    try {
      if (/\[native code\]/.test(fetch)) {
        return fetch(url2, { method: "POST", body: body, keepalive: true }).then(safe(function(answer) {
          if (/^5|429/.test(answer.status)) keep(events, answer.status);
          else if (answer.status > 299) answer.text().then(function(why) {
            log("rejected: " + why, events);
          });
        }), safe(function() {
          log("fetch failed", events);
          left || images(url2, events);
        }));
      }
    } catch (e) {
    }
    if (leaving || !beacon(url2, body)) images(url2, events);
  }
  function beacon(url2, body) {
    try {
      return navigator.sendBeacon(url2, body);
    } catch (e) {
    }
  }
  function images(url2, events) {
    events.forEach(function(e) {
      e.re = 1;
      var query = new URLSearchParams(e);
      var img = new Image();
      if (e.p) query.set("p", JSON.stringify(e.p));
      img.onerror = safe(function() {
        keep([e], "unreachable");
      });
      img.src = url2 + "?img=1&" + query;
    });
  }
  function keep(events, reason) {
    log("kept for later: " + reason, events);
    save("q", enqueue(load("q"), events, now()));
  }
  function replay() {
    var queue = load("q");
    if (queue) {
      save("q");
      log("replay", queue);
      send(queue);
    }
  }

  // src/aplus.js
  var ACTIONS = { setMetaInfo: "set", sendPV: "pageview" };
  var KEYS = { "aplus-rhost-v": "host", DEBUG: "debug", "aplus-waiting": "manual", _user_id: "userId", _hold: "hold" };
  var TYPES = { CLK: "click", EXP: "exposure", OTHER: "custom" };
  function value(key, v) {
    return key == "manual" || key == "hold" ? v == "MAN" || v == "BLOCK" || v != "START" && v : v;
  }

  // src/core.js
  var FLUSH_EVENTS = 10;
  var FLUSH_MS = 3e3;
  var buffer = [];
  var timer;
  var commands = {
    // set(key, value); also aplus.setMetaInfo.
    set: function(key, v) {
      key = KEYS[key] || key;
      cfg[key] = value(key, v);
      if (key == "hold" && !cfg.hold) flush();
      if (key == "vid" && v === false) save("v");
    },
    // record(name, type, props): type is a protocol type (click, exposure, media,
    // interaction, custom) or aplus's CLK / EXP / OTHER; custom when absent. `props` go
    // as given: ones that break the protocol's limits get the event rejected (the debug
    // build shows the collector's answer; the full build will cut them to size).
    record: function(name, type, props) {
      emit(TYPES[type] || type || "custom", { n: clip(name, 128), p: props });
    },
    // optOut() keeps this browser from being counted (on this origin) until optOut(false).
    optOut: function(on2) {
      save("optout", on2 === false ? null : 1);
    }
  };
  function run(command) {
    try {
      var name = command.action.replace("aplus.", "");
      var args = command.arguments;
      log("> " + command.action, args);
      commands[ACTIONS[name] || name].apply(0, [].concat(args));
    } catch (e) {
      log("bad command: " + e, command);
    }
  }
  function emit(t, fields) {
    var n = navigator;
    if (load("optout")) return log("not counted: opted out", fields);
    if (cfg.dnt && (n.doNotTrack == "1" || n.globalPrivacyControl)) return log("not counted: Do-Not-Track/GPC", fields);
    var s = session(t == "pageview");
    var e = { t: t, ts: now(), id: rid(), sid: s.i };
    var v = cfg.vid !== false && (load("v") || rid());
    if (v) save("v", e.vid = v);
    if (t == "pageview") e.sn = s.n;
    for (var k in fields) if (fields[k] != null && fields[k] !== "") e[k] = fields[k];
    if (false) hook.emit(e);
    buffer.push(e);
    if (t == "pageview" || buffer.length >= FLUSH_EVENTS) flush();
    else timer = timer || setTimeout(flush, FLUSH_MS);
  }
  function flush(leaving) {
    var events = buffer;
    clearTimeout(timer);
    timer = 0;
    if (cfg.hold && !leaving) return events.length && log("held", events);
    buffer = [];
    if (!cfg.appKey) return events.length && log("not sent: no appKey", events);
    events.forEach(function(e) {
      e.k = cfg.appKey;
      if (cfg.userId) e.uid = cfg.userId;
    });
    send(events, leaving);
  }

  // src/debounce.js
  function debounce(fn, ms) {
    var timer2;
    return function() {
      clearTimeout(timer2);
      timer2 = setTimeout(fn, ms);
    };
  }

  // src/engagement.js
  var total = 0;
  var since = 0;
  var active = false;
  var depth = 0;
  function update(off) {
    var t = now();
    var was = active;
    if (was && t > since) total += t - since;
    since = t;
    active = !off && !document.hidden && document.hasFocus();
    if (active != was) session(0, was);
  }
  function scrolled() {
    depth = Math.max(depth, Math.min(100, Math.round((pageYOffset + innerHeight) / document.documentElement.scrollHeight * 100)) || 0);
  }
  function take(off) {
    update(off);
    scrolled();
    var out = { et: total, sd: depth };
    total = 0;
    return out;
  }
  function restart() {
    take();
    depth = 0;
    scrolled();
  }

  // src/page.js
  var ROUTE_SETTLE_MS = 200;
  var d = document;
  var current;
  function url(href) {
    return clip(cleanUrl(href, cfg.strip, cfg.hash, location.href), 2048);
  }
  function hidden() {
    return d.hidden || d.prerendering;
  }
  function pageview(o, props) {
    var done;
    var go = safe(function() {
      if (done || hidden()) return;
      done = 1;
      o = o || {};
      var u = url(o.url || location.href);
      var meta = d.querySelector('meta[name="eb-page-code"]');
      var pc = clip(o.pageCode || cfg.pageCode || meta && meta.content, 128);
      restart();
      emit("pageview", {
        u: u,
        // After the first page view of a single-page app, the referrer is the last route.
        r: url(o.referrer || (current ? current.u : d.referrer)),
        pc: pc,
        ti: clip(o.title || d.title, 512),
        cs: d.characterSet,
        lang: navigator.language,
        sw: screen.width,
        sh: screen.height,
        tp: navigator.maxTouchPoints,
        p: props
      });
      current = { u: u, pc: pc };
    });
    if (hidden()) {
      log("page view waits until shown", o);
      on(d, "visibilitychange", go);
      on(d, "prerenderingchange", go);
    }
    go();
  }
  commands.pageview = pageview;
  function end(leaving) {
    if (!current) return;
    var g = take(leaving);
    if (g.et > 0) emit("engagement", { u: current.u, pc: current.pc, et: g.et, sd: g.sd });
    if (leaving) flush(1);
  }
  function start() {
    var w = window;
    var route = debounce(safe(function() {
      if (!cfg.manual && current && url(location.href) != current.u) {
        end();
        pageview();
      }
    }), ROUTE_SETTLE_MS);
    ["pushState", "replaceState"].forEach(function(name) {
      var original = history[name];
      history[name] = function() {
        var result = original.apply(this, arguments);
        route();
        return result;
      };
    });
    on(w, "popstate", route);
    on(w, "hashchange", route);
    on(d, "visibilitychange", function() {
      update();
      if (hidden()) end(1);
    });
    on(w, "pagehide", function() {
      end(1);
    });
    on(w, "pageshow", function(e) {
      if (e.persisted && !cfg.manual) pageview();
    });
    on(w, "focus", update);
    on(w, "blur", function() {
      setTimeout(safe(update));
    });
    on(w, "scroll", scrolled);
    update();
    if (!cfg.manual) pageview();
    else log("manual page views");
  }

  // src/basic.js
  var QUEUES = ["eb_queue", "aplus_queue"];
  (function(w) {
    try {
      var m = /[?&]eb_debug=([01])/.exec(location.search);
      if (m) save("debug", m[1] == "1" || null);
      if (false) {
        var debug = document.createElement("script");
        debug.src = script.src.replace(/[^/]*$/, false ? "beacon.full.debug.js" : "beacon.debug.js");
        return script.parentNode.insertBefore(debug, script);
      }
      if (w.__edu_beacon || !w.URL) return;
      w.__edu_beacon = 1;
      QUEUES.forEach(function(name) {
        var queue = w[name] = w[name] || [];
        var pending = queue.splice(0);
        queue.push = function() {
          ;
          [].forEach.call(arguments, run);
          return 0;
        };
        pending.forEach(run);
      });
      if (true) {
        if (load("debug")) cfg.debug = 1;
        logReady();
        log("edu-beacon 0.1.0, settings", cfg);
      }
      replay();
      start();
      if (false) hook.start();
    } catch (e) {
      log("failed to start: " + e);
    }
  })(window);
})();
