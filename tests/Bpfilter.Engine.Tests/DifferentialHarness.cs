using System.Globalization;
using System.Text;
using Bpfilter.Engine.Deployment;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Tests;

/// <summary>A model rule's counter (or the policy's, at index -1) on both sides.</summary>
public sealed record CounterComparison(string Chain, int Index, string Rule, (ulong Packets, ulong Bytes) Iptables, (ulong Packets, ulong Bytes) Bpfilter)
{
    public bool Agrees => Iptables == Bpfilter;
    public string Where => Index == IptablesRulesetFormatter.PolicyIndex ? $"{Chain} policy" : $"{Chain} rule {Index + 1} '{Rule}'";
    public override string ToString() =>
        $"{Where}: iptables {Iptables.Packets} packets {Iptables.Bytes} bytes, Bpfilter {Bpfilter.Packets} packets {Bpfilter.Bytes} bytes";
}

/// <summary>What one ruleset did with a list of packets on both sides.</summary>
public sealed record DifferentialOutcome(IReadOnlyList<CounterComparison> Counters, IReadOnlyList<(bool Iptables, bool Bpfilter)> Delivered, IReadOnlyList<string> Anomalies)
{
    public IEnumerable<CounterComparison> CounterMismatches => Counters.Where(c => !c.Agrees);
    public IEnumerable<int> DeliveryMismatches => Delivered.Select((d, i) => (d, i)).Where(x => x.d.Iptables != x.d.Bpfilter).Select(x => x.i);
    public bool Agrees => !CounterMismatches.Any() && !DeliveryMismatches.Any() && Anomalies.Count == 0;
}

/// <summary>
/// Loads a ruleset into both receivers of a <see cref="DifferentialNetwork"/> (iptables-restore and ipset in one,
/// Publisher.Publish at nf-input in the other), sends packets to both, and reads back per-rule counters and which
/// packets got through. Whether a packet got through is counted by one observer rule per packet in the security
/// table's INPUT chain, which runs after the filter table (and after Bpfilter's program at priority 0), matching the
/// packet's tag with u32; a last rule there counts everything, so traffic that is not the test's shows up.
/// </summary>
public sealed class DifferentialHarness : IDisposable
{
    private readonly DifferentialNetwork _network;
    private readonly string _files;
    private readonly string _variant;

    /// <param name="variant">"" for the iptables the system has, or "-legacy" or "-nft" for that one.</param>
    public DifferentialHarness(DifferentialNetwork network, string variant = "")
    {
        _network = network;
        _variant = variant;
        Deployment = $"bpft-diff-{network.Id}";
        _files = Path.Combine(Path.GetTempPath(), $"bpft-diff-{network.Id}");
        Directory.CreateDirectory(_files);
    }

    public string Deployment { get; }

    /// <summary>What iptables --version says: which iptables this is (nf_tables or legacy).</summary>
    public string IptablesVersion => DifferentialNetwork.Run(_network.Iptables, $"iptables{_variant} --version").Trim();

    public void Dispose()
    {
        if (Deployments.Names().Contains(Deployment)) Deployments.Unpublish(Deployment);
        Directory.Delete(_files, recursive: true);
    }

    /// <summary>Runs <paramref name="packets"/> through both sides with fresh state and compares the totals.</summary>
    public DifferentialOutcome Run(Ruleset ruleset, IptablesRuleset iptables, IReadOnlyList<DifferentialPacket> packets)
    {
        Load(ruleset, iptables, packets);
        for (int i = 0; i < packets.Count; i++)
        {
            foreach (var frame in packets[i].Frames(Tag(i))) _network.SendToBoth(frame);
        }
        // veth delivers in the sender's softirq, mostly before sendto returns; on a busy machine ksoftirqd may finish
        // later. A real disagreement stays: reading again after a pause only rules out a late packet.
        var outcome = Compare(ruleset, iptables, packets, Read());
        for (int i = 0; i < 5 && !outcome.Agrees; i++)
        {
            Thread.Sleep(100);
            outcome = Compare(ruleset, iptables, packets, Read());
        }
        return outcome;
    }

    /// <summary>
    /// Runs the packets again one at a time with fresh state, reading both sides after each, and returns, for each
    /// packet whose counters or delivery differ, what each side did with that packet alone.
    /// </summary>
    public IReadOnlyList<(int Packet, DifferentialOutcome Outcome)> Replay(Ruleset ruleset, IptablesRuleset iptables, IReadOnlyList<DifferentialPacket> packets)
    {
        Load(ruleset, iptables, packets);
        var differing = new List<(int, DifferentialOutcome)>();
        var before = Read();
        for (int i = 0; i < packets.Count; i++)
        {
            foreach (var frame in packets[i].Frames(Tag(i))) _network.SendToBoth(frame);
            Thread.Sleep(2);
            var after = Read();
            var total = Compare(ruleset, iptables, packets, after);
            var earlier = Compare(ruleset, iptables, packets, before);
            var delta = new DifferentialOutcome(
                total.Counters.Zip(earlier.Counters, (a, b) => a with { Iptables = Minus(a.Iptables, b.Iptables), Bpfilter = Minus(a.Bpfilter, b.Bpfilter) }).ToList(),
                [total.Delivered[i]], total.Anomalies);
            if (!delta.Agrees) differing.Add((i, delta));
            before = after;
        }
        return differing;
    }

    private static (ulong, ulong) Minus((ulong Packets, ulong Bytes) a, (ulong Packets, ulong Bytes) b) => (a.Packets - b.Packets, a.Bytes - b.Bytes);

    private static int Tag(int packet) => packet + 1;

    private sealed record Snapshot(IptablesCounters Iptables, IptablesCounters Observers, IReadOnlyList<CounterRow> Bpfilter);

    private void Load(Ruleset ruleset, IptablesRuleset iptables, IReadOnlyList<DifferentialPacket> packets)
    {
        string File(string name, string text)
        {
            var path = Path.Combine(_files, name);
            System.IO.File.WriteAllText(path, text);
            return path;
        }
        var observers4 = Observers(packets, IpFamily.Ipv4);
        var observers6 = Observers(packets, IpFamily.Ipv6);
        // Flush first, so the old rules let go of their ipsets before those are destroyed and made anew.
        string v = _variant;
        try
        {
            DifferentialNetwork.Run(_network.Iptables,
                $"iptables{v} -F && iptables{v} -X && ip6tables{v} -F && ip6tables{v} -X && ipset destroy"
                + $" && ipset -exist restore < {File("sets", iptables.IpsetRestore)}"
                + $" && iptables{v}-restore < {File("ipt4", iptables.Ipv4 + observers4)}"
                + $" && ip6tables{v}-restore < {File("ipt6", iptables.Ipv6 + observers6)}");
        }
        catch (InvalidOperationException e)
        {
            throw new InvalidOperationException($"{e.Message}\nthe ruleset:\n{DifferentialTests.Listing(ruleset)}as iptables:\n{iptables.Ipv4}{iptables.Ipv6}{iptables.IpsetRestore}", e);
        }
        DifferentialNetwork.Run(_network.Bpfilter,
            $"iptables{v}-restore < {File("obs4", observers4)} && ip6tables{v}-restore < {File("obs6", observers6)}");
        if (Deployments.Names().Contains(Deployment)) Deployments.Unpublish(Deployment);
        Publisher.Publish(ruleset, new PublishOptions(_network.Bpfilter));
    }

    /// <summary>The security table: one rule per packet of the family, matching its tag, then one for everything.</summary>
    private static string Observers(IReadOnlyList<DifferentialPacket> packets, IpFamily family)
    {
        var text = new StringBuilder("*security\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n");
        for (int i = 0; i < packets.Count; i++)
        {
            if (packets[i].Family != family) continue;
            // IPv4: the identification (bytes 4-5); IPv6: the flow label (the low 20 bits of the first word).
            var location = family == IpFamily.Ipv4 ? "2&0xFFFF" : "0&0xFFFFF";
            text.Append(CultureInfo.InvariantCulture, $"-A INPUT -m u32 --u32 \"{location}={Tag(i)}\"\n");
        }
        return text.Append("-A INPUT\nCOMMIT\n").ToString();
    }

    private Snapshot Read()
    {
        string script = $"iptables{_variant}-save -c && echo '### ipv6' && ip6tables{_variant}-save -c";
        static IptablesCounters Parse(string output)
        {
            var counters = new IptablesCounters();
            var at = output.IndexOf("### ipv6", StringComparison.Ordinal);
            counters.Read(IpFamily.Ipv4, output[..at]);
            counters.Read(IpFamily.Ipv6, output[at..]);
            return counters;
        }
        var iptables = Parse(DifferentialNetwork.Run(_network.Iptables, script));
        var observers = Parse(DifferentialNetwork.Run(_network.Bpfilter, script));
        return new Snapshot(iptables, observers, Deployments.Counters(Deployment));
    }

    private static DifferentialOutcome Compare(Ruleset ruleset, IptablesRuleset iptables, IReadOnlyList<DifferentialPacket> packets, Snapshot snapshot)
    {
        var counters = new List<CounterComparison>();
        var ours = snapshot.Bpfilter;
        var hooked = ruleset.Chains[0];
        foreach (var (chain, rules) in new[] { (hooked.Name, (IReadOnlyList<Rule>)hooked.Rules) }.Concat(ruleset.UserChains.Select(u => (u.Name, (IReadOnlyList<Rule>)u.Rules))))
        {
            for (int i = 0; i < rules.Count; i++)
            {
                var theirs = iptables.Counters.TryGetValue((chain, i), out var refs) ? snapshot.Iptables.Sum(refs) : (0UL, 0UL);
                // A user chain no rule reaches is not in the deployment: its rules count nothing.
                var row = ours.FirstOrDefault(r => r.Kind == CounterKind.Rule && r.Chain == chain && r.Position == i + 1);
                counters.Add(new CounterComparison(chain, i, rules[i].Name ?? $"#{i + 1}", theirs, row is null ? (0, 0) : (row.Packets, row.Bytes)));
            }
        }
        var policy = ours.Single(r => r.Kind == CounterKind.Policy);
        counters.Add(new CounterComparison(hooked.Name, IptablesRulesetFormatter.PolicyIndex, "(policy)",
            snapshot.Iptables.Sum(iptables.Counters[(hooked.Name, IptablesRulesetFormatter.PolicyIndex)]), (policy.Packets, policy.Bytes)));

        var anomalies = new List<string>();
        foreach (var row in ours.Where(r => r.Kind is CounterKind.NotIp or CounterKind.Malformed && r.Packets > 0))
            anomalies.Add($"Bpfilter counted {row.Packets} packets as {row.Rule}, which iptables has no counter for");
        var delivered = new List<(bool, bool)>();
        var position = new Dictionary<IpFamily, int> { [IpFamily.Ipv4] = 0, [IpFamily.Ipv6] = 0 };
        var seen = new Dictionary<(IpFamily, bool), ulong>();
        foreach (var packet in packets)
        {
            int at = ++position[packet.Family];
            var a = snapshot.Iptables.Of(packet.Family, "security", "INPUT", at).Packets;
            var b = snapshot.Observers.Of(packet.Family, "security", "INPUT", at).Packets;
            delivered.Add((a > 0, b > 0));
            if (a > 1 || b > 1) anomalies.Add($"a packet tagged {Tag(delivered.Count - 1)} got through {a} times at iptables and {b} times at Bpfilter");
            seen[(packet.Family, true)] = seen.GetValueOrDefault((packet.Family, true)) + a;
            seen[(packet.Family, false)] = seen.GetValueOrDefault((packet.Family, false)) + b;
        }
        foreach (var family in new[] { IpFamily.Ipv4, IpFamily.Ipv6 })
        {
            foreach (var (side, observed, isIptables) in new[] { ("iptables", snapshot.Iptables, true), ("Bpfilter", snapshot.Observers, false) })
            {
                var all = observed.Of(family, "security", "INPUT", position[family] + 1).Packets;
                if (all != seen.GetValueOrDefault((family, isIptables)))
                    anomalies.Add($"the {side} receiver let {all} {Match.FamilyName(family)} packets through, {all - seen.GetValueOrDefault((family, isIptables))} of them not the test's");
            }
        }
        return new DifferentialOutcome(counters, delivered, anomalies);
    }
}
