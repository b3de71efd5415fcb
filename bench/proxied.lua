-- wrk script for the proxied scenarios: every request is one nginx would forward to its upstream
-- (proxy_pass with `proxy_http_version 1.1` and upstream keep-alive, the usual set of
-- proxy_set_header lines). The Host, the browser's headers and the forwarded set are those of a
-- real page view; what varies is what varies in production: a unique X-Request-Id on every
-- request, and the client (its address and its session cookie) picked from a pool of visitors.

local VISITORS = 1000
local counter = 0
local visitors = {}

-- A fixed seed: every server is sent the same visitors in the same order.
function init(args)
    math.randomseed(17)
    for i = 1, VISITORS do
        visitors[i] = {
            ip = string.format("198.51.%d.%d", math.random(0, 255), math.random(1, 254)),
            session = string.format("%08x%08x%08x%08x", math.random(0, 0x7fffffff), math.random(0, 0x7fffffff),
                                    math.random(0, 0x7fffffff), math.random(0, 0x7fffffff)),
        }
    end
    prefix = string.format("%08x-%04x-4%03x-a%03x-", math.random(0, 0x7fffffff), math.random(0, 0xffff),
                           math.random(0, 0xfff), math.random(0, 0xfff))
end

local headers = {
    ["Host"] = "www.example.com",
    ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        .. "Chrome/126.0.0.0 Safari/537.36",
    ["Accept"] = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
        .. "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
    ["Accept-Language"] = "en-US,en;q=0.9,fr;q=0.8",
    ["Accept-Encoding"] = "gzip, deflate, br, zstd",
    ["X-Forwarded-Proto"] = "https",
}

function request()
    counter = counter + 1
    local visitor = visitors[math.random(1, VISITORS)]
    headers["X-Request-Id"] = prefix .. string.format("%012x", counter)
    headers["X-Real-IP"] = visitor.ip
    headers["X-Forwarded-For"] = visitor.ip
    headers["Cookie"] = "sessionid=" .. visitor.session .. "; csrftoken=Xq3v9JrLw2TzKc8pNf5GmYh7Ud4Es6Ba"
    return wrk.format("GET", "/", headers)
end

function done(summary, latency, requests)
    -- wrk --latency prints up to the 99th percentile; the harness reads the 99.9th from here.
    io.write(string.format("pronghorn-bench p99.9 %d us\n", latency:percentile(99.9)))
end
