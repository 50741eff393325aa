#!/bin/sh
# Runs inside the VM of tests/vm.rs: each `cmd-N.sh` the host puts in this
# directory is run (in the background, so tests may overlap), with its
# output in `out-N`/`err-N` and its exit status in `rc-N`. The host
# rewrites `heartbeat` every second while it lives; 20 seconds without a
# change and the VM powers off, so no VM outlives its test process.
dir=$(dirname "$0")
(
  last=""; idle=0
  while :; do
    sleep 2
    beat=$(cat "$dir/heartbeat" 2>/dev/null)
    if [ "$beat" = "$last" ]; then idle=$((idle + 2)); else idle=0; last=$beat; fi
    if [ "$idle" -ge 20 ]; then
      echo 1 > /proc/sys/kernel/sysrq
      echo o > /proc/sysrq-trigger
    fi
  done
) &
echo ready > "$dir/ready"
while :; do
  for cmd in "$dir"/cmd-*.sh; do
    [ -e "$cmd" ] || continue
    n=${cmd##*/cmd-}
    n=${n%.sh}
    mv "$cmd" "$dir/run-$n.sh" 2>/dev/null || continue
    (
      sh "$dir/run-$n.sh" > "$dir/out-$n" 2> "$dir/err-$n"
      echo $? > "$dir/rc-$n.tmp"
      mv "$dir/rc-$n.tmp" "$dir/rc-$n"
    ) &
  done
  sleep 0.2
done
