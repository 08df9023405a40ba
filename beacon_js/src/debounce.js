// `fn` called once, `ms` after the last of a burst of calls.
export function debounce(fn, ms) {
  var timer
  return function () {
    clearTimeout(timer)
    timer = setTimeout(fn, ms)
  }
}
