// One fetch from the page, as an app's own script makes it. WebDriver's
// execute_async passes [method, url, JSON body or null, bearer token or null]
// and the callback that takes the result: {status, body} or {error}.
const [method, url, body, bearer] = arguments;
const done = arguments[arguments.length - 1];
const headers = {};
if (body !== null) headers['Content-Type'] = 'application/json';
if (bearer !== null) headers['Authorization'] = 'Bearer ' + bearer;
fetch(url, {
  method,
  headers,
  credentials: 'include',
  body: body === null ? undefined : JSON.stringify(body),
})
  .then(async (res) => done({ status: res.status, body: await res.text() }))
  .catch((e) => done({ error: String(e) }));
