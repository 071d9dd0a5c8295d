#!/usr/bin/env bash
# How Torii chose its HTTP and JSON libraries (docs/http.md, "Why these
# libraries"). Not part of the build or CI: rerun it when Debian's packages
# change. Needs: apt-get install libevhtp-dev libevent-dev libboost-dev
#                libsimdjson-dev rapidjson-dev nlohmann-json3-dev wrk bc
#
#   bench/http_libs/run.sh [ROUNDS]
#
# HTTP: three minimal servers (libevhtp, libevent's evhttp, Boost.Beast), each
# with 2 I/O threads that hand every POST to a "scheduler" thread and send the
# answer (1 KiB) back from it, as the real request path does. wrk drives them
# with 16 connections; the figure that survives a noisy shared machine is the
# server's CPU time per request (utime+stime / requests).
# JSON: parse a v2 request with 256 and 1M FP32 values into raw bytes, and
# write a response with them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${TMPDIR:-/tmp}/torii_http_libs
mkdir -p "$out"
g++ -O2 -std=c++17 "$here/evhtp_srv.cc" -o "$out/evhtp_srv" -levhtp -levent -levent_pthreads -lpthread
g++ -O2 -std=c++17 "$here/evhttp_srv.cc" -o "$out/evhttp_srv" -levent -levent_pthreads -lpthread
g++ -O2 -std=c++17 "$here/beast_srv.cc" -o "$out/beast_srv" -lpthread
g++ -O2 -std=c++17 "$here/json_bench.cc" -o "$out/json_bench" -lsimdjson
printf 'wrk.method = "POST"\nwrk.body = string.rep("a", 1024)\n' > "$out/post.lua"

cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
tck=$(getconf CLK_TCK)
for r in $(seq "${1:-3}"); do
  for s in evhtp evhttp beast; do
    port=$((18000 + RANDOM % 1000))
    "$out/${s}_srv" "$port" 2 & pid=$!
    sleep 0.3
    for mode in post get; do
      lua=""; [ "$mode" = post ] && lua="-s $out/post.lua"
      c0=$(cpu $pid)
      res=$(wrk -t1 -c16 -d5s $lua "http://127.0.0.1:$port/x")
      c1=$(cpu $pid)
      req=$(echo "$res" | awk '/requests in/{print $1}')
      rps=$(echo "$res" | awk '/Requests\/sec/{print $2}')
      echo "round $r $s $mode c=16 rps=$rps server_cpu_us_per_req=$(echo "($c1-$c0)*1000000/$tck/$req" | bc -l | cut -c1-5)"
    done
    kill $pid; wait $pid 2>/dev/null || true
  done
done
"$out/json_bench"
