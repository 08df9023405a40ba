// The collector's read API, with the credential the user signed in with.
//
// The credential lives in sessionStorage (this tab, until it closes) and travels only in
// the Authorization header: never in a URL, where it would end up in histories, logs and
// shared links.

const TOKEN_KEY = 'eb-dashboard-token'

export class ApiError extends Error {
  constructor(status, message) {
    super(message)
    this.status = status
  }
}

export const credential = {
  get: () => sessionStorage.getItem(TOKEN_KEY) || '',
  set: (token) => sessionStorage.setItem(TOKEN_KEY, token),
  clear: () => sessionStorage.removeItem(TOKEN_KEY)
}

/** GET a JSON path of the collector; ApiError on any answer but 200. */
export async function getJSON(path, params) {
  const query = params ? '?' + new URLSearchParams(params).toString() : ''
  const headers = { Accept: 'application/json' }
  const token = credential.get()
  if (token) headers.Authorization = 'Bearer ' + token
  const answer = await fetch(path + query, { headers, cache: 'no-store', credentials: 'omit' })
  let body = null
  try {
    body = await answer.json()
  } catch (_) {
    body = null
  }
  if (!answer.ok) throw new ApiError(answer.status, (body && body.error) || answer.statusText)
  return body
}

/** GET, but null when the endpoint is absent or not for this credential (404, 401, 403). */
export async function getOptional(path, params) {
  try {
    return await getJSON(path, params)
  } catch (err) {
    if (err instanceof ApiError && [401, 403, 404].includes(err.status)) return null
    throw err
  }
}

/** The query naming a subject: a platform (`app=`) or a group of platforms (`group=`). */
export const subjectParams = (subject) => (subject.kind === 'group' ? { group: subject.id } : { app: subject.id })

export const stats = (subject, params) => getJSON('/api/stats', { ...subjectParams(subject), ...params })
