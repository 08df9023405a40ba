// Just enough of a browser page for the beacon's page modules to run under node: the
// build constants, document, location, navigator, screen. Import it before them. (Run
// on its own by `node --test` it defines no test.) Storage is absent: the beacon keeps
// its ids in memory then (util.js).
var g = globalThis
g.DEBUG = false
g.FULL = true
g.__VERSION__ = 'test'
g.window = g
g.location = { href: 'https://www.example.edu/course/1', search: '' }
g.document = {
  currentScript: null,
  hidden: false,
  title: '',
  referrer: '',
  characterSet: 'UTF-8',
  documentElement: { scrollHeight: 1000 },
  hasFocus: function () { return true },
  querySelector: function () { return null },
  querySelectorAll: function () { return [] },
  addEventListener: function () {}
}
Object.defineProperty(g, 'navigator', { value: { language: 'zh-CN', maxTouchPoints: 0 }, configurable: true })
g.screen = { width: 1920, height: 1080 }
g.history = {}
g.pageYOffset = 0
g.innerHeight = 800

// A fake element: attributes by name, the ancestors `closest` finds by selector.
export function element(attributes, ancestors) {
  return {
    textContent: '',
    tagName: 'DIV',
    getAttribute: function (name) { return attributes[name] == null ? null : attributes[name] },
    closest: function (selector) { return (ancestors || {})[selector] || null }
  }
}
