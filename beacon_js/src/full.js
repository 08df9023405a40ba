// Entry point of the full build (deep tag, JY/T §7.1.3): the basic tag plus the user
// id, clicks, click tracks and exposure, media playback and reading, interactions.
// The deep modules register their commands and hooks when imported, before basic.js
// reads the command queues, so commands pushed before the script loaded find them.
import './deep.js'
import './basic.js'
