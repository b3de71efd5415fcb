-- wrk script for the fixed-rate scenario: plain GET requests at a fixed rate, given after `--`
-- in requests per second (for the whole run; the harness runs one wrk thread).
--
-- wrk has no rate option (wrk2 has, and is not packaged in Debian), but it asks a script's
-- delay() how many milliseconds to wait before each request of a connection. This one keeps
-- a schedule: request n of the thread is due at start + n / rate, and whichever connection is
-- free next takes the next slot and waits until it is due. The rate holds over the run as long
-- as the server keeps up; a server that cannot shows as an achieved rate below the target.
-- Latency is wrk's own: from the moment the request is written to its response. Unlike wrk2,
-- the time a request spent waiting behind a slow one is not added (no correction for
-- coordinated omission), so the numbers are a lower bound when a server falls behind.

local ffi = require("ffi")
ffi.cdef[[
struct pronghorn_timespec { long tv_sec; long tv_nsec; };
int clock_gettime(int clock, struct pronghorn_timespec *now);
]]
local CLOCK_MONOTONIC = 1
local now_buffer = ffi.new("struct pronghorn_timespec")

local function now_ms()
    ffi.C.clock_gettime(CLOCK_MONOTONIC, now_buffer)
    return tonumber(now_buffer.tv_sec) * 1000 + tonumber(now_buffer.tv_nsec) / 1e6
end

local interval_ms = nil
local next_due = nil

function init(args)
    local rate = tonumber(args[1])
    if rate == nil or rate <= 0 then
        error("paced.lua needs a rate: wrk ... -s paced.lua URL -- REQUESTS_PER_SECOND")
    end
    interval_ms = 1000 / rate
end

function delay()
    local now = now_ms()
    if next_due == nil then
        next_due = now
    end
    local due = next_due
    next_due = next_due + interval_ms
    -- wrk's timers count whole milliseconds; rounding keeps the mean error at zero.
    local wait = due - now
    if wait < 0.5 then
        return 0
    end
    return math.floor(wait + 0.5)
end

function done(summary, latency, requests)
    io.write(string.format("pronghorn-bench p99.9 %d us\n", latency:percentile(99.9)))
end
