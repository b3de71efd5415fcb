-- wrk script for the flask scenario: a mix, alternating request by request, of the two routes
-- of bench/apps/flask_app.py: GET /users/<id> (a path parameter, answered with jsonify) with
-- an id that changes on every request, and GET /stream (a streamed response, no Content-Length).

local counter = 0

function request()
    counter = counter + 1
    if counter % 2 == 0 then
        return wrk.format("GET", "/stream")
    end
    return wrk.format("GET", "/users/" .. (counter % 10007))
end

function done(summary, latency, requests)
    io.write(string.format("pronghorn-bench p99.9 %d us\n", latency:percentile(99.9)))
end
