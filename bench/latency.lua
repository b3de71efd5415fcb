-- wrk script with no per-request work: it only prints the 99.9th latency percentile at the
-- end, which wrk --latency does not (defining neither request() nor response() keeps wrk's
-- requests precomputed, as without a script).

function done(summary, latency, requests)
    io.write(string.format("pronghorn-bench p99.9 %d us\n", latency:percentile(99.9)))
end
