// The standard's appendix-A example (aplus_queue) in our terms, so a platform that
// already carries that snippet only changes the script src. Our own commands take the
// same arguments as theirs; only names and a few values differ.

// aplus.X -> our command (record keeps its name).
export var ACTIONS = { setMetaInfo: 'set', sendPV: 'pageview' }

// setMetaInfo keys -> our settings; other keys (appKey, pageCode, ...) keep their name.
export var KEYS = { 'aplus-rhost-v': 'host', DEBUG: 'debug', 'aplus-waiting': 'manual', _user_id: 'userId', _hold: 'hold' }

// record types -> protocol types; a protocol type passes as it is.
export var TYPES = { CLK: 'click', EXP: 'exposure', OTHER: 'custom' }

// setMetaInfo values: aplus-waiting MAN (manual page views), _hold BLOCK ... START. Only
// those two keys are switches: a user id may well be the word "START".
export function value(key, v) {
  return key == 'manual' || key == 'hold' ? v == 'MAN' || v == 'BLOCK' || (v != 'START' && v) : v
}
