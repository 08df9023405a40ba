// Interactions with a resource (JY/T table 4 #11-15), one command each:
//   rate(rid, score 1-5, meta)      share(rid, channel, meta)
//   like(rid, meta)  unlike(rid, meta)  favorite(rid, meta)  unfavorite(rid, meta)
//   comment(rid, meta)
// meta (optional): {rt, subj, stage, src, p}. Without a resource id, or with a score
// outside 1-5, nothing is sent.
import { log, clip } from './util.js'
import { commands, emit } from './core.js'
import { int, props, resource } from './fields.js'

'rate like unlike share favorite unfavorite comment'.split(' ').forEach(function (n) {
  commands[n] = function (id, a, meta) {
    var two = n == 'rate' || n == 'share'
    var m = (two ? meta : a) || {}
    var f = resource(function (k) { return k == 'rid' ? id : m[k] })
    f.n = n
    f.p = props(m.p)
    if (two) n == 'rate' ? (f.score = int(a)) : (f.ch = clip(a, 32))
    if (!f.rid || (n == 'rate' && !(f.score >= 1 && f.score <= 5))) return DEBUG && log('not sent: ' + n + ' needs a resource id (and a score 1-5)', f)
    emit('interaction', f)
  }
})
