using System.Diagnostics;
using System.Globalization;
using System.Text;
using Bpfilter.Engine.Rules;
using Xunit;
using Xunit.Abstractions;

namespace Bpfilter.Engine.Tests;

/// <summary>
/// Bpfilter against the real thing: seeded rulesets go into iptables and ip6tables (the filter table's INPUT chain)
/// in one network namespace and are published by Bpfilter at nf-input in another; the same crafted frames go to
/// both; every packet must get through on both sides or on neither, and every rule's packet and byte counters, and
/// the policy's, must be equal. BPFILTER_DIFF_RULESETS, BPFILTER_DIFF_PACKETS and BPFILTER_DIFF_SEED make a longer
/// or another run; BPFILTER_DIFF_IPTABLES=legacy or nft picks that iptables over the system's.
/// </summary>
[Collection("kernel")]
public sealed class DifferentialTests(ITestOutputHelper output)
{
    private static int Setting(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value > 0 ? value : fallback;

    [Fact]
    public void Bpfilter_at_nf_input_gives_the_verdicts_and_counters_of_iptables()
    {
        int rulesets = Setting("BPFILTER_DIFF_RULESETS", 40), packetsPerRuleset = Setting("BPFILTER_DIFF_PACKETS", 60), seed = Setting("BPFILTER_DIFF_SEED", 3);
        var clock = Stopwatch.StartNew();
        using var network = new DifferentialNetwork();
        var variant = Environment.GetEnvironmentVariable("BPFILTER_DIFF_IPTABLES") switch { "legacy" => "-legacy", "nft" => "-nft", _ => "" };
        using var harness = new DifferentialHarness(network, variant);
        var version = harness.IptablesVersion;
        var generate = new DifferentialGenerators(seed, nfTables: version.Contains("nf_tables", StringComparison.Ordinal));
        int packets = 0, frames = 0, rules = 0, rulesHit = 0, delivered = 0, comparisons = 0;
        var failures = new List<string>();
        var coverage = new SortedDictionary<string, (int Rules, int Hit)>(StringComparer.Ordinal);
        int ran = 0;
        for (int r = 0; r < rulesets; r++)
        {
            ran++;
            var ruleset = generate.Ruleset(harness.Deployment);
            var list = Enumerable.Range(0, packetsPerRuleset).Select(_ => generate.Packet(ruleset)).ToList();
            var iptables = IptablesRulesetFormatter.Format(ruleset);
            var outcome = harness.Run(ruleset, iptables, list);
            packets += list.Count;
            frames += list.Sum(p => p.Frames(1).Count);
            rules += outcome.Counters.Count - 1;
            rulesHit += outcome.Counters.Count(c => c.Index >= 0 && c.Bpfilter.Packets > 0);
            Tally(coverage, ruleset, outcome);
            comparisons += outcome.Counters.Count + outcome.Delivered.Count;
            delivered += outcome.Delivered.Count(d => d.Bpfilter);
            if (outcome.Agrees) continue;
            failures.Add(Describe(r, ruleset, iptables, list, outcome, harness.Replay(ruleset, iptables, list)));
            if (failures.Count >= 3) break;
        }
        output.WriteLine($"differential against {version} (seed {seed}): {ran} rulesets, {packets} packets ({frames} frames), {rules} rules and {ran} policies compared"
            + $" ({rulesHit} rules matched packets), {comparisons} comparisons, {delivered} packets got through; {failures.Count} rulesets disagreed; {clock.Elapsed.TotalSeconds:F1} s");
        output.WriteLine("rules that matched packets, of the rules with each condition or verdict: "
            + string.Join(", ", coverage.Select(c => $"{c.Key} {c.Value.Hit}/{c.Value.Rules}")));
        Assert.True(failures.Count == 0, string.Join("\n\n", failures));
        // A run where nothing matches or everything is dropped would prove nothing.
        Assert.True(rulesHit * 4 >= rules, $"only {rulesHit} of {rules} rules matched a packet");
        Assert.InRange(delivered, packets / 10, packets - packets / 10);
    }

    /// <summary>Counts, per condition and verdict kind, the rules that have it and those of them that matched a packet.</summary>
    private static void Tally(SortedDictionary<string, (int Rules, int Hit)> coverage, Ruleset ruleset, DifferentialOutcome outcome)
    {
        foreach (var c in outcome.Counters.Where(c => c.Index >= 0))
        {
            var rule = c.Chain == ruleset.Chains[0].Name ? ruleset.Chains[0].Rules[c.Index] : ruleset.FindUserChain(c.Chain)!.Rules[c.Index];
            foreach (var feature in Features(ruleset, rule))
            {
                var (count, hit) = coverage.GetValueOrDefault(feature);
                coverage[feature] = (count + 1, hit + (c.Bpfilter.Packets > 0 ? 1 : 0));
            }
        }
    }

    /// <summary>What a rule tests and does, for the coverage line: "source list", "ttl range", "verdict jump", ...</summary>
    private static IEnumerable<string> Features(Ruleset ruleset, Rule rule)
    {
        var m = rule.Match;
        string Family() => ruleset.FamilyOf(rule) is { } f ? Match.FamilyName(f) : "both";
        string Range(RangeMatch r) => (r.Negated ? "!" : "") + (r.First == r.Last ? "value" : "range");
        string Address(AddressMatch a) => (a.Negated ? "!" : "") + (a.Set is not null ? "set" : a.Prefixes.Count > 1 ? "list" : "prefix");
        string Ports(PortMatch p) => (p.Negated ? "!" : "") + (p.Set is not null ? "set" : p.Ranges.Count > 1 ? "list" : "range");
        yield return $"verdict {Verdict.Name(rule.Verdict.Kind)}";
        if (m.Protocol is { } p) yield return $"protocol{(p.Negated ? " !" : "")}";
        if (m.Source is { } source) yield return $"source {Address(source)}";
        if (m.Destination is { } destination) yield return $"destination {Address(destination)}";
        if (m.SourcePort is { } sourcePort) yield return $"source-port {Ports(sourcePort)}";
        if (m.DestinationPort is { } destinationPort) yield return $"destination-port {Ports(destinationPort)}";
        if (m.TcpFlags is { } flags) yield return $"tcp-flags{(flags.Negated ? " !" : "")}";
        if (m.IcmpType is { } type) yield return $"icmp-type {Family()}{(type.Negated ? " !" : "")}{(m.IcmpCode is not null ? " with code" : "")}";
        if (m.Length is { } length) yield return $"length {Range(length)}";
        if (m.Dscp is { } dscp) yield return $"dscp {Range(dscp)}";
        if (m.Ttl is { } ttl) yield return $"ttl {Range(ttl)}";
        if (m.HopLimit is { } hopLimit) yield return $"hop-limit {Range(hopLimit)}";
        if (m.Fragment is { } fragment) yield return $"fragment {Family()} {fragment}";
        if (m.Limit is { } limit) yield return limit.Burst >= 10000 ? "limit never spent" : "limit spent";
    }

    private static string Describe(int index, Ruleset ruleset, IptablesRuleset iptables, IReadOnlyList<DifferentialPacket> packets,
        DifferentialOutcome outcome, IReadOnlyList<(int Packet, DifferentialOutcome Outcome)> replay)
    {
        var text = new StringBuilder($"ruleset {index + 1} disagrees:\n");
        foreach (var c in outcome.CounterMismatches) text.Append("  ").Append(c).Append('\n');
        foreach (var p in outcome.DeliveryMismatches)
            text.Append(CultureInfo.InvariantCulture, $"  packet {p + 1} ({packets[p]}) got through at {(outcome.Delivered[p].Iptables ? "iptables" : "Bpfilter")} only\n");
        foreach (var a in outcome.Anomalies) text.Append("  ").Append(a).Append('\n');
        text.Append("replayed one packet at a time, these differ:\n");
        foreach (var (p, delta) in replay.Take(5))
        {
            text.Append(CultureInfo.InvariantCulture, $"  packet {p + 1}: {packets[p]}; got through: iptables {(delta.Delivered[0].Iptables ? "yes" : "no")}, Bpfilter {(delta.Delivered[0].Bpfilter ? "yes" : "no")}\n");
            foreach (var c in delta.Counters.Where(c => c.Iptables.Packets + c.Bpfilter.Packets > 0)) text.Append("    ").Append(c).Append('\n');
        }
        text.Append("the ruleset:\n").Append(Listing(ruleset));
        text.Append("as iptables:\n").Append(iptables.Ipv4).Append(iptables.Ipv6).Append(iptables.IpsetRestore);
        return text.ToString();
    }

    /// <summary>The ruleset, rule by rule, in the model's own words.</summary>
    public static string Listing(Ruleset ruleset)
    {
        var text = new StringBuilder();
        var hooked = ruleset.Chains[0];
        text.Append(CultureInfo.InvariantCulture, $"  {hooked.Name} at {hooked.Hook.ToName()}, policy {hooked.Policy}\n");
        foreach (var (i, rule) in hooked.Rules.Index()) text.Append(CultureInfo.InvariantCulture, $"    {i + 1}. {rule}\n");
        foreach (var user in ruleset.UserChains)
        {
            text.Append(CultureInfo.InvariantCulture, $"  {user.Name}\n");
            foreach (var (i, rule) in user.Rules.Index()) text.Append(CultureInfo.InvariantCulture, $"    {i + 1}. {rule}\n");
        }
        foreach (var set in ruleset.Sets) text.Append(CultureInfo.InvariantCulture, $"  set {set.Name} {SetTypeNames.Format(set.Type)}: {string.Join(", ", set.Elements)}\n");
        return text.ToString();
    }
}
