#!/usr/bin/env python3
# Sums the sender profiles of bench/dataplane-profile.ts (GW_PROF_PERF=DIR) into nanoseconds per
# packet: the time inside nftables by the netfilter hook that ran it (prerouting filter chains,
# the nat chains on prerouting and postrouting, forward, ...), and the whole sender's time by
# kernel function. cpu-clock samples carry their period in ns; a run's total over the packets it
# sent is what one packet cost. Runs of one variant and receiver are summed before dividing.
# usage: perf-hooks.py DIR [variant ...]   (env LEAF=N: also the N costliest (hook, function))
import collections, json, os, re, subprocess, sys

NFT = re.compile(r'^(nft_|nf_tables|__nft)')


def hook_of(stack):
    """The netfilter place a sample was taken in, from its call chain (leaf first); None outside nftables."""
    if not any(NFT.match(f) for f in stack):
        return None
    if 'nf_nat_inet_fn' in stack:
        if 'nf_nat_ipv4_pre_routing' in stack:
            return 'nat prerouting'
        if 'nf_nat_ipv4_out' in stack:
            return 'nat postrouting'
        return 'nat other'
    if 'nf_hook_slow' not in stack:
        return 'other'
    callers = stack[stack.index('nf_hook_slow') + 1:][:3]
    for fn, name in (('ip_forward', 'filter forward'), ('ip_rcv', 'filter prerouting'), ('ip_output', 'filter postrouting'),
                     ('ip_local_deliver', 'filter input'), ('br_handle_frame', 'bridge prerouting'), ('br_forward', 'bridge forward'),
                     ('__br_forward', 'bridge forward'), ('br_dev_queue_push_xmit', 'bridge postrouting'), ('br_nf_pre_routing', 'br_netfilter prerouting')):
        if fn in callers:
            return name
    return 'hook ' + (callers[0] if callers else '?')


def samples(data):
    """(period, stack) for every sample of a perf.data file."""
    out = subprocess.run(['perf', 'script', '-i', data, '-F', 'period,ip,sym'], capture_output=True, text=True).stdout
    period, stack = 0, []
    for line in out.splitlines() + ['']:
        if not line.strip():
            if stack:
                yield period, stack
            period, stack = 0, []
        elif line[0] != '\t':
            period = int(line.split()[-1])
        else:
            parts = line.split()
            if len(parts) >= 2:
                stack.append(re.sub(r'\+0x[0-9a-f]+$', '', parts[1]))


def main():
    d = sys.argv[1]
    runs = json.load(open(os.path.join(d, 'runs.json')))
    only = sys.argv[2:]
    agg = {}
    for r in runs:
        if only and r['variant'] not in only:
            continue
        key = (r['variant'], r['mode'])
        a = agg.setdefault(key, {'sent': 0, 'total': 0, 'hooks': collections.Counter(), 'leaf': collections.Counter(), 'cpu': [], 'runs': 0})
        a['sent'] += r['sent']
        a['cpu'].append(r['cpuNsPerPacket'])
        a['runs'] += 1
        for period, stack in samples(r['perf']):
            a['total'] += period
            h = hook_of(stack)
            if h:
                a['hooks'][h] += period
                a['leaf'][(h, stack[0])] += period
    variants = list(dict.fromkeys(k[0] for k in agg))
    for mode in ('routed', 'bridged'):
        cols = [v for v in variants if (v, mode) in agg]
        if not cols:
            continue
        w = max(12, max(len(v) for v in cols) + 1)
        print(f'\n### {mode} receiver: ns per new-flow packet (perf samples of the sender over the packets it sent; {agg[(cols[0], mode)]["runs"]} runs each)\n')
        print('| | ' + ' | '.join(cols) + ' |')
        print('| --- |' + ' ---: |' * len(cols))
        per = lambda v, x: x / agg[(v, mode)]['sent']
        print('| sender total (perf) | ' + ' | '.join(f'{per(v, agg[(v, mode)]["total"]):.0f}' for v in cols) + ' |')
        hooks = sorted({h for v in cols for h in agg[(v, mode)]['hooks']})
        for h in hooks:
            print(f'| nftables, {h} | ' + ' | '.join(f'{per(v, agg[(v, mode)]["hooks"][h]):.0f}' for v in cols) + ' |')
        print('| nftables, all hooks | ' + ' | '.join(f'{per(v, sum(agg[(v, mode)]["hooks"].values())):.0f}' for v in cols) + ' |')
        n = int(os.environ.get('LEAF', '0'))
        if n:
            top = collections.Counter()
            for v in cols:
                for k, x in agg[(v, mode)]['leaf'].items():
                    top[k] = max(top[k], per(v, x))
            for (h, f), _ in top.most_common(n):
                print(f'| {h}: {f} | ' + ' | '.join(f'{per(v, agg[(v, mode)]["leaf"][(h, f)]):.0f}' for v in cols) + ' |')


main()
