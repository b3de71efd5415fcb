-- wrk script for the upload scenario: every request POSTs the same 64 KB body.
wrk.method = "POST"
wrk.body = string.rep("u", 64 * 1024)
wrk.headers["Content-Type"] = "application/octet-stream"
