using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Bpfilter.Engine.Rules;
using Match = Bpfilter.Engine.Rules.Match;

namespace Bpfilter.Engine.Tests;

/// <summary>One iptables rule whose counter is (part of) a model rule's counter: the table's family, chain and 1-based position.</summary>
public readonly record struct IptablesRuleRef(IpFamily Family, string Chain, int Position);

/// <summary>
/// A ruleset as iptables-restore and ipset-restore input for a filter table's INPUT chain, and where each model
/// rule's counter lives: <see cref="Counters"/> maps (chain, 0-based rule index) to the iptables rules whose counters
/// add up to it (a rule of no family is in both tables).
/// </summary>
public sealed record IptablesRuleset(string Ipv4, string Ipv6, string IpsetRestore, IReadOnlyDictionary<(string Chain, int Index), IReadOnlyList<IptablesRuleRef>> Counters);

/// <summary>A rule iptables cannot say with the same meaning; the message says why.</summary>
public sealed class NotExpressibleException(string message) : Exception(message);

/// <summary>
/// Writes a ruleset of one nf-input chain as iptables rules of the same meaning, independently of the engine's own
/// writers, for the differential test. Address lists and address sets become ipsets, port lists and port sets
/// multiport; ranges of TTL, hop limit and DSCP that -m ttl, -m hl and -m dscp cannot say become u32 matches on the
/// header; IPv6 fragment conditions other than "first" need two ip6tables rules, so they become a helper chain that
/// returns early for packets that do not qualify and runs a one-rule "fire" chain (the rule's limit and verdict, and
/// its counter) for packets that do. Limits come last, so only packets that meet every other condition take a token,
/// as Bpfilter's compiler does. Whatever has no equivalent throws <see cref="NotExpressibleException"/>.
/// </summary>
public static class IptablesRulesetFormatter
{
    /// <summary>The policy's counter is the built-in chain's.</summary>
    public const int PolicyIndex = -1;

    private const string HookedChain = "INPUT";
    private const int MaxLogPrefix = 29, MaxMultiportSlots = 15;

    public static IptablesRuleset Format(Ruleset ruleset)
    {
        if (ruleset.Chains.Count != 1 || ruleset.Chains[0].Hook != Hook.NfInput)
            throw new NotExpressibleException("only a ruleset of one nf-input chain maps onto the filter table's INPUT chain");
        var chain = ruleset.Chains[0];
        if (ruleset.UserChains.Any(u => u.Name is HookedChain or "FORWARD" or "OUTPUT" || u.Name.StartsWith("HLP", StringComparison.Ordinal) || u.Name.StartsWith("FIRE", StringComparison.Ordinal)))
            throw new NotExpressibleException("user chains may not be named INPUT, FORWARD, OUTPUT, HLP* or FIRE*");
        var counters = new Dictionary<(string, int), List<IptablesRuleRef>>();
        var ipsets = new StringBuilder();
        foreach (var set in ruleset.Sets) WriteIpset(ipsets, set.Name, set.Type, set.Elements.Where(e => e.Prefix is not null).Select(e => e.Prefix!.Value));
        var lists = new ListSets(ipsets);
        var tables = new Dictionary<IpFamily, string>();
        foreach (var family in new[] { IpFamily.Ipv4, IpFamily.Ipv6 })
        {
            var table = new Table(family, ruleset, lists, counters);
            table.AddChain(HookedChain);
            foreach (var user in ruleset.UserChains) table.AddChain(user.Name);
            table.Emit(HookedChain, chain.Name, chain.Rules);
            foreach (var user in ruleset.UserChains) table.Emit(user.Name, user.Name, user.Rules);
            tables[family] = table.Render(chain.Policy);
        }
        Add(counters, (chain.Name, PolicyIndex), new IptablesRuleRef(IpFamily.Ipv4, HookedChain, 0));
        Add(counters, (chain.Name, PolicyIndex), new IptablesRuleRef(IpFamily.Ipv6, HookedChain, 0));
        return new IptablesRuleset(tables[IpFamily.Ipv4], tables[IpFamily.Ipv6], ipsets.ToString(),
            counters.ToDictionary(c => c.Key, c => (IReadOnlyList<IptablesRuleRef>)c.Value));
    }

    private static void Add(Dictionary<(string, int), List<IptablesRuleRef>> counters, (string, int) key, IptablesRuleRef where)
    {
        if (!counters.TryGetValue(key, out var list)) counters[key] = list = new List<IptablesRuleRef>();
        list.Add(where);
    }

    /// <summary>An address set as an ipset (port sets become multiport lists instead); a /0, which ipset cannot hold, becomes its two halves.</summary>
    private static void WriteIpset(StringBuilder text, string name, SetType type, IEnumerable<IpPrefix> prefixes)
    {
        if (type == SetType.Port) return;
        bool v6 = type is SetType.Ipv6Address or SetType.Ipv6Network;
        string kind = type is SetType.Ipv4Address or SetType.Ipv6Address ? "hash:ip" : "hash:net";
        text.Append(CultureInfo.InvariantCulture, $"create {name} {kind} family {(v6 ? "inet6" : "inet")}\n");
        foreach (var prefix in prefixes)
        {
            if (prefix.Length == 0)
            {
                var high = (UInt128)1 << (prefix.Bits - 1);
                text.Append(CultureInfo.InvariantCulture, $"add {name} {new IpPrefix(prefix.Family, 0, 1)}\n");
                text.Append(CultureInfo.InvariantCulture, $"add {name} {new IpPrefix(prefix.Family, high, 1)}\n");
            }
            else text.Append(CultureInfo.InvariantCulture, $"add {name} {prefix}\n");
        }
    }

    /// <summary>The ipsets made for address lists of more than one prefix, one per list.</summary>
    private sealed class ListSets(StringBuilder text)
    {
        private int _count;

        public string Add(AddressMatch match)
        {
            var name = $"bpft-list-{++_count}";
            var family = match.Family!.Value;
            WriteIpset(text, name, family == IpFamily.Ipv4 ? SetType.Ipv4Network : SetType.Ipv6Network, match.Prefixes);
            return name;
        }
    }

    private sealed class Table(IpFamily family, Ruleset ruleset, ListSets lists, Dictionary<(string, int), List<IptablesRuleRef>> counters)
    {
        private readonly List<(string Name, List<string> Rules)> _chains = new();
        private int _helpers;

        public void AddChain(string name) => _chains.Add((name, new List<string>()));

        private int Append(string chain, string rule)
        {
            var rules = _chains.First(c => c.Name == chain).Rules;
            rules.Add(rule);
            return rules.Count;
        }

        public void Emit(string iptablesChain, string modelChain, IReadOnlyList<Rule> rules)
        {
            for (int i = 0; i < rules.Count; i++)
            {
                var rule = rules[i];
                if (ruleset.FamilyOf(rule) is { } only && only != family) continue;
                try
                {
                    EmitRule(iptablesChain, (modelChain, i), rule);
                }
                catch (NotExpressibleException e)
                {
                    throw new NotExpressibleException($"chain '{modelChain}' rule {i + 1} ({rule}): {e.Message}");
                }
            }
        }

        private void EmitRule(string chain, (string, int) key, Rule rule)
        {
            var m = rule.Match;
            if (m.InInterface is not null || m.OutInterface is not null) throw new NotExpressibleException("nf-input sees no interfaces");
            if (m.Mark is not null) throw new NotExpressibleException("nf-input chains do not match marks");
            // Two tables keep two buckets, Bpfilter one: a limit must belong to one family to mean the same.
            if (m.Limit is not null && ruleset.FamilyOf(rule) is null)
                throw new NotExpressibleException("a limit on a rule of both families would be two buckets in iptables and ip6tables");
            var tail = new List<string>();
            if (rule.Name is { } name)
            {
                if (name.IndexOfAny(['"', '\\']) >= 0) throw new NotExpressibleException("the rule's name cannot be a comment");
                tail.Add($"-m comment --comment \"{name}\"");
            }
            if (m.Limit is { } limit)
                tail.Add(string.Create(CultureInfo.InvariantCulture, $"-m limit --limit {limit.Count}/{limit.Unit.ToString().ToLowerInvariant()} --limit-burst {limit.Burst}"));
            var target = Target(rule.Verdict);
            if (target.Length > 0) tail.Add(target);

            var matches = Matches(m);
            var helper = family == IpFamily.Ipv6 ? FragmentDecisions(m.Fragment) : null;
            if (helper is null)
            {
                Add(counters, key, new IptablesRuleRef(family, chain, Append(chain, Line(chain, matches.Concat(tail)))));
                return;
            }
            if (rule.Verdict.Kind is VerdictKind.Goto or VerdictKind.Return)
                throw new NotExpressibleException($"an IPv6 fragment condition needs a helper chain, and a {Verdict.Name(rule.Verdict.Kind)} there would leave the helper, not the rule's chain");
            int n = ++_helpers;
            string hlp = $"HLP{n}", fire = $"FIRE{n}";
            AddChain(hlp);
            AddChain(fire);
            Append(chain, Line(chain, matches.Append($"-j {hlp}")));
            var (entries, fallThrough) = helper.Value;
            foreach (var (condition, fires) in entries)
            {
                if (fires) Append(hlp, Line(hlp, [condition, $"-j {fire}"]));
                Append(hlp, Line(hlp, [condition, "-j RETURN"]));
            }
            if (fallThrough) Append(hlp, Line(hlp, [$"-j {fire}"]));
            Add(counters, key, new IptablesRuleRef(family, fire, Append(fire, Line(fire, tail))));
        }

        private static string Line(string chain, IEnumerable<string> parts) => string.Join(' ', new[] { $"-A {chain}" }.Concat(parts.Where(p => p.Length > 0)));

        /// <summary>
        /// An IPv6 fragment condition as a decision list: the first entry whose condition holds says whether the rule
        /// fires; when none holds, <c>fallThrough</c> says. Null when one match says it (or there is no condition).
        /// </summary>
        private static (IReadOnlyList<(string Condition, bool Fires)> Entries, bool FallThrough)? FragmentDecisions(FragmentMatch? fragment) => fragment switch
        {
            null or { Kind: FragmentKind.First, Negated: false } => null,
            { Kind: FragmentKind.First, Negated: true } => ([("-m frag --fragfirst --fragmore", false)], true),
            { Kind: FragmentKind.NotFirst, Negated: false } => ([("-m frag --fragfirst", false), ("-m frag", true)], false),
            _ => ([("-m frag --fragfirst", true), ("-m frag", false)], true),
        };

        private static string Not(bool negated) => negated ? "! " : "";

        private List<string> Matches(Match m)
        {
            bool v6 = family == IpFamily.Ipv6;
            var parts = new List<string>();
            if (m.Protocol is { } protocol)
            {
                if (protocol.Protocol.Number == 0) throw new NotExpressibleException("iptables reads protocol 0 as 'all'");
                parts.Add($"{Not(protocol.Negated)}-p {protocol.Protocol.Number}");
            }
            Address(parts, m.Source, "-s", "src");
            Address(parts, m.Destination, "-d", "dst");
            if (!v6 && m.Fragment is { } fragment)
                parts.Add(fragment.Kind == FragmentKind.NotFirst
                    ? $"{Not(fragment.Negated)}-f"
                    : $"-m u32 {Not(fragment.Negated)}--u32 \"4&0x3FFF=0x2000\""); // MF set, offset 0
            if (v6 && m.Fragment is { Kind: FragmentKind.First, Negated: false }) parts.Add("-m frag --fragfirst --fragmore");

            if (m.Protocol is { Negated: false, Protocol.HasPorts: true } transport)
            {
                string module = transport.Protocol.Number == 6 ? "tcp" : "udp";
                var single = new List<string>();
                var multiport = new List<string>();
                Ports(m.SourcePort, "sport", single, multiport);
                Ports(m.DestinationPort, "dport", single, multiport);
                if (m.TcpFlags is { } flags)
                {
                    if (((byte)flags.Mask & 0xc0) != 0) throw new NotExpressibleException("iptables' --tcp-flags knows FIN, SYN, RST, PSH, ACK and URG only");
                    single.Add($"{Not(flags.Negated)}--tcp-flags {FlagNames(flags.Mask)} {FlagNames(flags.Set)}");
                }
                // One -m tcp per condition: iptables-nft 1.8.9 merges "! --sport A ! --dport B" into one compare of
                // both ports, "not (A, B)", which holds when either port differs.
                parts.AddRange(single.Select(condition => $"-m {module} {condition}"));
                parts.AddRange(multiport);
            }
            if (m.IcmpType is not null || m.IcmpCode is not null) parts.Add(Icmp(m, v6));
            if (m.Length is { } length) parts.Add($"-m length {Not(length.Negated)}--length {Range(length)}");
            if (m.Dscp is { } dscp)
                parts.Add(dscp.First == dscp.Last
                    ? $"-m dscp {Not(dscp.Negated)}--dscp {dscp.First}"
                    : $"-m u32 {Not(dscp.Negated)}--u32 \"0>>{(v6 ? 22 : 18)}&0x3F={dscp.First}:{dscp.Last}\"");
            if (m.Ttl is { } ttl) parts.AddRange(Hops(ttl, "ttl", "8>>24"));
            if (m.HopLimit is { } hopLimit) parts.AddRange(Hops(hopLimit, "hl", "4&0xFF"));
            return parts;
        }

        private void Address(List<string> parts, AddressMatch? match, string option, string direction)
        {
            if (match is null) return;
            if (match.Set is { } set) parts.Add($"-m set {Not(match.Negated)}--match-set {set} {direction}");
            // iptables-nft 1.8.9 cannot load "! -s 0.0.0.0/0" (RULE_APPEND: Invalid argument): that one goes through an ipset.
            else if (match.Prefixes.Count == 1 && !(match.Negated && match.Prefixes[0].Length == 0)) parts.Add($"{Not(match.Negated)}{option} {match.Prefixes[0]}");
            else parts.Add($"-m set {Not(match.Negated)}--match-set {lists.Add(match)} {direction}");
        }

        private void Ports(PortMatch? match, string option, List<string> single, List<string> multiport)
        {
            if (match is null) return;
            var ranges = match.Set is { } set
                ? ruleset.FindSet(set)!.Elements.Select(e => e.Ports!.Value).ToList()
                : match.Ranges.ToList();
            if (ranges.Count == 0) throw new NotExpressibleException("an empty port set has no multiport spelling");
            if (ranges.Count == 1 && match.Set is null)
            {
                single.Add($"{Not(match.Negated)}--{option} {PortRange(ranges[0])}");
                return;
            }
            if (ranges.Sum(r => r.First == r.Last ? 1 : 2) > MaxMultiportSlots) throw new NotExpressibleException("multiport takes 15 ports, a range counting two");
            multiport.Add($"-m multiport {Not(match.Negated)}--{option}s {string.Join(',', ranges.Select(PortRange))}");
        }

        private static string PortRange(PortRange r) => r.First == r.Last ? $"{r.First}" : $"{r.First}:{r.Last}";

        private static string Range(RangeMatch r) => r.First == r.Last ? $"{r.First}" : $"{r.First}:{r.Last}";

        private static string FlagNames(TcpFlags flags) =>
            flags == TcpFlags.None ? "NONE" : string.Join(',', new[] { "FIN", "SYN", "RST", "PSH", "ACK", "URG" }.Where((_, bit) => ((byte)flags & (1 << bit)) != 0));

        private static string Icmp(Match m, bool v6)
        {
            // --icmp-type takes one type and one code (or all codes); its '!' negates the pair.
            if (m.IcmpType is not { } type) throw new NotExpressibleException("iptables matches an ICMP code only together with a type");
            if (type.First != type.Last) throw new NotExpressibleException("--icmp-type takes one type, not a range");
            if (!v6 && type.First == 255) throw new NotExpressibleException("iptables reads ICMP type 255 as 'any'");
            string value = type.First.ToString(CultureInfo.InvariantCulture);
            if (m.IcmpCode is { } code)
            {
                if (code.First != code.Last || code.Negated || type.Negated) throw new NotExpressibleException("--icmp-type takes one code, and negates type and code together");
                value += $"/{code.First}";
            }
            return v6 ? $"-m icmp6 {Not(type.Negated)}--icmpv6-type {value}" : $"-m icmp {Not(type.Negated)}--icmp-type {value}";
        }

        /// <summary>-m ttl / -m hl for one value and for ranges (gt and lt together); a negated range as u32 on the header byte.</summary>
        private static IEnumerable<string> Hops(RangeMatch range, string module, string u32Location)
        {
            if (range.First == range.Last)
            {
                yield return $"-m {module} {Not(range.Negated)}--{module}-eq {range.First}";
                yield break;
            }
            if (range.Negated)
            {
                yield return $"-m u32 ! --u32 \"{u32Location}={range.First}:{range.Last}\"";
                yield break;
            }
            if (range.First > 0) yield return $"-m {module} --{module}-gt {range.First - 1}";
            if (range.Last < 255) yield return $"-m {module} --{module}-lt {range.Last + 1}";
        }

        private static string Target(Verdict verdict) => verdict.Kind switch
        {
            VerdictKind.Accept => "-j ACCEPT",
            VerdictKind.Drop => "-j DROP",
            VerdictKind.Continue => "",
            VerdictKind.Return => "-j RETURN",
            VerdictKind.Jump => $"-j {verdict.Target}",
            VerdictKind.Goto => $"-g {verdict.Target}",
            VerdictKind.Log => verdict.LogPrefix is { Length: > 0 } prefix
                ? prefix.Length > MaxLogPrefix || prefix.Contains('"') ? throw new NotExpressibleException("LOG prefixes are 29 characters without quotes")
                    : $"-j LOG --log-prefix \"{prefix}\""
                : "-j LOG",
            _ => throw new NotExpressibleException($"the {Verdict.Name(verdict.Kind)} verdict is not in the differential test"),
        };

        public string Render(Verdict policy)
        {
            var text = new StringBuilder("*filter\n");
            text.Append(CultureInfo.InvariantCulture, $":{HookedChain} {(policy.Kind == VerdictKind.Accept ? "ACCEPT" : "DROP")} [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n");
            foreach (var (name, _) in _chains.Skip(1)) text.Append(CultureInfo.InvariantCulture, $":{name} - [0:0]\n");
            foreach (var (_, rules) in _chains)
            {
                foreach (var rule in rules) text.Append(rule).Append('\n');
            }
            return text.Append("COMMIT\n").ToString();
        }
    }
}

/// <summary>Packets and bytes of each rule of each chain (and each built-in chain's policy) of iptables-save -c output, per family and table.</summary>
public sealed partial class IptablesCounters
{
    private readonly Dictionary<(IpFamily, string Table, string Chain), (ulong Packets, ulong Bytes)> _policies = new();
    private readonly Dictionary<(IpFamily, string Table, string Chain), List<(ulong Packets, ulong Bytes)>> _rules = new();

    /// <summary>Reads the output of iptables-save -c (for <paramref name="family"/>) into this.</summary>
    public void Read(IpFamily family, string save)
    {
        string? table = null;
        foreach (var raw in save.Split('\n'))
        {
            var line = raw.Trim();
            if (line.StartsWith('*')) table = line[1..];
            else if (PolicyLine().Match(line) is { Success: true } policy)
            {
                var key = (family, table!, policy.Groups[1].Value);
                _rules[key] = new List<(ulong, ulong)>();
                if (policy.Groups[2].Value != "-") _policies[key] = (ulong.Parse(policy.Groups[3].Value, CultureInfo.InvariantCulture), ulong.Parse(policy.Groups[4].Value, CultureInfo.InvariantCulture));
            }
            else if (RuleLine().Match(line) is { Success: true } rule)
                _rules[(family, table!, rule.Groups[3].Value)].Add((ulong.Parse(rule.Groups[1].Value, CultureInfo.InvariantCulture), ulong.Parse(rule.Groups[2].Value, CultureInfo.InvariantCulture)));
        }
    }

    /// <summary>Position 0 is the chain's policy; 1 and up its rules.</summary>
    public (ulong Packets, ulong Bytes) Of(IpFamily family, string table, string chain, int position)
    {
        if (position == 0)
            return _policies.TryGetValue((family, table, chain), out var policy) ? policy : throw new InvalidOperationException($"no policy counter for {table} {chain}");
        return _rules.TryGetValue((family, table, chain), out var rules) && position <= rules.Count
            ? rules[position - 1]
            : throw new InvalidOperationException($"iptables-save shows no rule {position} in {Family(family)} {table} {chain}");
    }

    public int RuleCount(IpFamily family, string table, string chain) => _rules.TryGetValue((family, table, chain), out var rules) ? rules.Count : 0;

    public (ulong Packets, ulong Bytes) Sum(IEnumerable<IptablesRuleRef> rules, string table = "filter")
    {
        ulong packets = 0, bytes = 0;
        foreach (var r in rules)
        {
            var (p, b) = Of(r.Family, table, r.Chain, r.Position);
            packets += p;
            bytes += b;
        }
        return (packets, bytes);
    }

    private static string Family(IpFamily family) => family == IpFamily.Ipv4 ? "iptables" : "ip6tables";

    [GeneratedRegex(@"^:(\S+) (\S+) \[(\d+):(\d+)\]$")]
    private static partial Regex PolicyLine();

    [GeneratedRegex(@"^\[(\d+):(\d+)\] -A (\S+)")]
    private static partial Regex RuleLine();
}
