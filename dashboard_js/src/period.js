// The periods the dashboard shows and compares, as dates in the collector's time zone.
// No DOM and no clock of its own (`now` is passed in): test/period.test.js runs it in Node.

const dayMs = 86400000
const toUtc = (date) => Date.UTC(+date.slice(0, 4), +date.slice(5, 7) - 1, +date.slice(8, 10))
const fromUtc = (ms) => new Date(ms).toISOString().slice(0, 10)
export const addDays = (date, n) => fromUtc(toUtc(date) + n * dayMs)
const daysBetween = (a, b) => Math.round((toUtc(b) - toUtc(a)) / dayMs) + 1

/** The same day `n` months later, or the month's last day when it has no such day (03-31 → 02-28). */
export function addMonths(date, n) {
  const y = +date.slice(0, 4), m = +date.slice(5, 7) - 1 + n, d = +date.slice(8, 10)
  const first = new Date(Date.UTC(y, m, 1))
  const last = new Date(Date.UTC(first.getUTCFullYear(), first.getUTCMonth() + 1, 0)).getUTCDate()
  return fromUtc(Date.UTC(first.getUTCFullYear(), first.getUTCMonth(), Math.min(d, last)))
}
const lastOfMonth = (date) => addDays(addMonths(date.slice(0, 8) + '01', 1), -1)
const validDate = (text) => /^\d{4}-\d{2}-\d{2}$/.test(text || '') && !isNaN(toUtc(text)) && fromUtc(toUtc(text)) === text

/** {date: 'YYYY-MM-DD', time: 'HH:MM:SS'} of `instant` in `timezone`. */
export function localParts(instant, timezone) {
  const parts = {}
  for (const p of new Intl.DateTimeFormat('en-CA', {
    timeZone: timezone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23'
  }).formatToParts(instant)) parts[p.type] = p.value
  return { date: `${parts.year}-${parts.month}-${parts.day}`, time: `${parts.hour}:${parts.minute}:${parts.second}` }
}

export const PERIODS = ['today', 'yesterday', '7d', '30d', 'month', 'lastmonth', 'custom']
export const GRANULARITIES = ['minute', 'hour', 'day', 'month']

/** The period of a view (its URL's p, from, to, g) at `now` ({date, time}): its dates,
 * the query's from/to (cut at now when it reaches today, so that each comparison
 * compares the same part of its period), and the two periods it is compared with: the
 * one before (the month before, for calendar months) and the same one a year earlier. */
export function resolvePeriod(params, now) {
  const { date: today, time } = now
  const p = PERIODS.includes(params.p) ? params.p : '7d'
  let from, to
  let monthly = false
  if (p === 'today') [from, to] = [today, today]
  else if (p === 'yesterday') [from, to] = [addDays(today, -1), addDays(today, -1)]
  else if (p === '30d') [from, to] = [addDays(today, -29), today]
  else if (p === 'month') [from, to, monthly] = [today.slice(0, 8) + '01', today, true]
  else if (p === 'lastmonth') {
    from = addMonths(today.slice(0, 8) + '01', -1)
    ;[to, monthly] = [lastOfMonth(from), true]
  } else if (p === 'custom' && validDate(params.from) && validDate(params.to) && params.from <= params.to) [from, to] = [params.from, params.to]
  else [from, to] = [addDays(today, -6), today]
  const days = daysBetween(from, to)
  const endTime = to === today ? time : '23:59:59'
  const range = (f, tt) => ({ from: `${f}T00:00:00`, to: `${tt}T${endTime}` })
  const previousTo = (shifted) => (p === 'lastmonth' ? lastOfMonth(shifted) : shifted)
  const previous = monthly
    ? range(addMonths(from, -1), previousTo(addMonths(to, -1)))
    : range(addDays(from, -days), addDays(to, -days))
  const lastYear = range(addMonths(from, -12), p === 'lastmonth' ? lastOfMonth(addMonths(to, -12)) : addMonths(to, -12))
  let g = GRANULARITIES.includes(params.g) ? params.g : days === 1 ? 'hour' : days <= 92 ? 'day' : 'month'
  if (g === 'minute' && days > 1) g = 'hour' // 2,000 buckets at most per read
  return { p, from, to, days, g, current: range(from, to), previous, lastYear }
}
