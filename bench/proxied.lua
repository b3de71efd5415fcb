-- wrk script for the proxied scenarios: every request is one nginx would forward to its upstream
-- (proxy_pass with `proxy_http_version 1.1` and upstream keep-alive, the usual set of
-- proxy_set_header lines). The Host, the browser's headers and the forwarded set are those of a
-- real page view; what varies is what varies in production: a unique X-Request-Id on every
-- request, and the client (its address and its session cookie) picked from a pool of visitors.

local VISITORS = 1000
local counter = 0
local visitors = {}
local prefix = nil

-- A fixed seed: every server is sent the same visitors in the same order.
function init(args)
    math.randomseed(17)
    for i = 1, VISITORS do
        -- Addresses from the documentation ranges; visitors behind one NAT share one.
        local network = math.random(0, 1) == 0 and "198.51.100." or "203.0.113."
        visitors[i] = {
            ip = network .. math.random(1, 254),
            session = string.format("%08x%08x%08x%08x", math.random(0, 0x7fffffff), math.random(0, 0x7fffffff),
                                    math.random(0, 0x7fffffff), math.random(0, 0x7fffffff)),
        }
    end
    prefix = string.format("%08x-%04x-4%03x-a%03x-", math.random(0, 0x7fffffff), math.random(0, 0xffff),
                           math.random(0, 0xfff), math.random(0, 0xfff))
end

-- In nginx's order: its proxy_set_header lines first, then the browser's own headers.
-- (wrk.format would take a table, whose order Lua does not keep.)
local BROWSER = "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    .. "Chrome/126.0.0.0 Safari/537.36\r\n"
    .. "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    .. "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7\r\n"
    .. "Accept-Language: en-US,en;q=0.9,fr;q=0.8\r\n"
    .. "Accept-Encoding: gzip, deflate, br, zstd\r\n"

function request()
    counter = counter + 1
    local visitor = visitors[math.random(1, VISITORS)]
    return "GET / HTTP/1.1\r\n"
        .. "Host: www.example.com\r\n"
        .. "X-Real-IP: " .. visitor.ip .. "\r\n"
        .. "X-Forwarded-For: " .. visitor.ip .. "\r\n"
        .. "X-Forwarded-Proto: https\r\n"
        .. "X-Request-Id: " .. prefix .. string.format("%012x", counter) .. "\r\n"
        .. BROWSER
        .. "Cookie: sessionid=" .. visitor.session .. "; csrftoken=Xq3v9JrLw2TzKc8pNf5GmYh7Ud4Es6Ba\r\n"
        .. "\r\n"
end

function done(summary, latency, requests)
    -- wrk --latency prints up to the 99th percentile; the harness reads the 99.9th from here.
    io.write(string.format("pronghorn-bench p99.9 %d us\n", latency:percentile(99.9)))
end
