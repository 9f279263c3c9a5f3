#!/usr/bin/env bash
# Helpers shared by the bench scripts (sourced; they expect `die` and `PORT` from the caller).

now_us() { echo "${EPOCHREALTIME/./}"; }

# A TCP port on 127.0.0.1 that nothing listens on, below the kernel's ephemeral range
# (net.ipv4.ip_local_port_range): the load generators' own connections take ephemeral ports,
# and one of them could take a port picked there between this check and the server's bind
# (how `bench/files.sh` failed with "files-api not ready").
free_port() {
    local port low=32768
    read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
    ((low > 12000)) || die "the ephemeral port range starts at $low: no room below it"
    for _ in $(seq 1 100); do
        port=$((10000 + RANDOM % (low - 10000)))
        if ! { exec 9<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
            echo "$port"
            return 0
        fi
        exec 9<&-
    done
    die "no free port found"
}

# wait_http PID URL LOG: until URL answers 2xx; dies at once (with LOG's tail) when PID exits.
wait_http() {
    local pid=$1 url=$2 log=$3
    for _ in $(seq 1 1500); do
        curl -fs -o /dev/null "$url" && return 0
        kill -0 "$pid" 2>/dev/null || { tail -20 "$log" >&2; die "the server for $url exited"; }
        sleep 0.02
    done
    tail -20 "$log" >&2
    die "$url not ready within 30 s"
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

# log_lines LOG: how many lines LOG has now (0 when it does not exist yet); pass it to
# listening_addr so that an earlier run's line in the same log is not read.
log_lines() { if [[ -f $1 ]]; then wc -l <"$1"; else echo 0; fi; }

# listening_addr PID LOG WHAT SKIP: a server started on port 0 logs `WHAT listening
# addr=HOST:PORT` (at info, target latchkey::server or files_api) once it is bound; waits for
# that line after LOG's first SKIP lines and prints HOST:PORT. Dies (with the log) when PID
# exits first or after 30 s.
listening_addr() {
    local pid=$1 log=$2 what=$3 skip=$4 addr
    for _ in $(seq 1 3000); do
        addr=$(tail -n +"$((skip + 1))" "$log" 2>/dev/null | sed -E 's/\x1b\[[0-9;]*m//g' |
            sed -nE "s/.*$what listening addr=([0-9.]+:[0-9]+).*/\1/p" | head -1)
        [[ -n $addr ]] && { echo "$addr"; return 0; }
        kill -0 "$pid" 2>/dev/null || { tail -20 "$log" >&2; die "$what exited before listening"; }
        sleep 0.01
    done
    tail -20 "$log" >&2
    die "$what did not report its address within 30 s"
}
