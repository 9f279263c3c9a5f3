#!/usr/bin/env bash
# Helpers shared by the bench scripts (sourced; they expect `die` and `PORT` from the caller).

now_us() { echo "${EPOCHREALTIME/./}"; }

# A TCP port on 127.0.0.1 that nothing listens on.
free_port() {
    local port
    for _ in $(seq 1 100); do
        port=$((20000 + RANDOM % 40000))
        if ! { exec 9<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
            echo "$port"
            return 0
        fi
        exec 9<&-
    done
    die "no free port found"
}

# 0 when GET /healthz on $PORT answers 200 (pure bash, no process started per probe).
probe_healthz() {
    local line=""
    { exec 8<>"/dev/tcp/127.0.0.1/$PORT"; } 2>/dev/null || return 1
    printf 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&8
    IFS= read -r -t 2 line <&8 || true
    exec 8<&-
    [[ $line == "HTTP/1.1 200"* ]]
}
