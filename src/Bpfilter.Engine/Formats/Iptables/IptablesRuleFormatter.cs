using System.Globalization;
using System.Text;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Formats.Iptables;

/// <summary>
/// Writes a rule as iptables arguments, in iptables-save's order (addresses, interfaces, protocol, fragment, match
/// modules, comment, target), or refuses with the reason when iptables cannot say exactly what the rule means.
/// </summary>
internal static class IptablesRuleFormatter
{
    /// <summary>Ports a -m multiport list holds, a range counting two (iptables' limit).</summary>
    private const int MaxMultiportSlots = 15;

    public static BpfilterException Inexpressible(string reason) => new("IptablesInexpressible", FailureCategory.InvalidData, reason);

    /// <summary>
    /// The rule's arguments; with <paramref name="listed"/>, as iptables -S and iptables-save print them: protocols
    /// by the names of <paramref name="listed"/>, --syn as the flags it stands for, limits in the unit iptables
    /// prints them in (60/minute as 1/sec). Without it, as written here since (what iptables-restore reads back
    /// into the same rule).
    /// </summary>
    public static IReadOnlyList<string> Format(Rule rule, IpFamily family, IptablesNameLookup? listed = null)
    {
        var m = rule.Match;
        bool v6 = family == IpFamily.Ipv6;
        var tool = v6 ? "ip6tables" : "iptables";
        if (m.ImpliedFamily is { } only && only != family)
            throw Inexpressible($"the rule is {Match.FamilyName(only)} only, and {tool} rules are {Match.FamilyName(family)}");
        var args = new List<string>();
        var ranges = new List<string>();
        var commaSources = Addresses(args, ranges, m.Source, "-s", "--src-range", family);
        var commaDestinations = Addresses(args, ranges, m.Destination, "-d", "--dst-range", family);
        if (IptablesRuleSpec.ExpansionProblem(commaSources, commaDestinations, m.Limit is not null, rule.Verdict) is { } expansion)
            throw Inexpressible(expansion);
        Interface(args, m.InInterface, "-i");
        Interface(args, m.OutInterface, "-o");
        if (m.Protocol is { } protocol)
        {
            if (protocol.Protocol.Number == 0) throw Inexpressible($"{tool} reads -p 0 as every protocol, so it cannot match protocol number 0");
            Add(args, protocol.Negated, "-p", listed?.Protocol(protocol.Protocol.Number) ?? IptablesNames.FormatProtocol(protocol.Protocol));
        }
        if (m.Fragment is { } fragment)
        {
            if (v6) throw Inexpressible("ip6tables matches fragments only with -m frag, which bpfilter does not write");
            if (fragment.Kind == FragmentKind.First) throw Inexpressible("iptables cannot match first fragments: its -f matches the fragments after the first");
            Add(args, fragment.Negated, "-f");
        }
        Transport(args, m, listed is not null);
        Icmp(args, m, v6);
        Multiport(args, m.SourcePort, "--sports");
        Multiport(args, m.DestinationPort, "--dports");
        if (ranges.Count > 0) args.AddRange(["-m", "iprange", .. ranges]);
        if (m.Length is { } length) args.AddRange(["-m", "length", .. Negation(length.Negated), "--length", ValueRange(length)]);
        if (m.Dscp is { } dscp)
        {
            if (dscp.First != dscp.Last) throw Inexpressible($"iptables matches one DSCP value, not the range {dscp}");
            args.AddRange(["-m", "dscp", .. Negation(dscp.Negated), "--dscp", $"0x{dscp.First:x2}"]);
        }
        if (m.Ttl is { } ttl) Hops(args, ttl, "ttl");
        if (m.HopLimit is { } hopLimit) Hops(args, hopLimit, "hl");
        if (m.Mark is { } mark)
        {
            if ((mark.Value & ~mark.Mask) != 0) throw Inexpressible($"the mark {mark} has bits outside its mask, so it never matches");
            args.AddRange(["-m", "mark", .. Negation(mark.Negated), "--mark",
                mark.Mask == uint.MaxValue ? $"0x{mark.Value:x}" : $"0x{mark.Value:x}/0x{mark.Mask:x}"]);
        }
        if (m.CtState is not null || m.CtDirection is not null)
        {
            args.AddRange(["-m", "conntrack"]);
            if (m.CtState is { } state) args.AddRange([.. Negation(state.Negated), "--ctstate", CtStateNames.Format(state.States).ToUpperInvariant()]);
            if (m.CtDirection is { } direction) args.AddRange(["--ctdir", CtDirectionNames.Format(direction).ToUpperInvariant()]);
        }
        if (m.Limit is { } limit)
        {
            if (limit.Count > 10_000UL * (ulong)limit.Unit) throw Inexpressible($"the limit {limit} is faster than iptables' 10000/second");
            if (limit.Burst > 10_000) throw Inexpressible($"the burst {limit.Burst} is more than iptables' 10000");
            args.AddRange(["-m", "limit", "--limit", listed is null ? $"{limit.Count}/{IptablesNames.FormatRateUnit(limit.Unit)}" : ListedRate(limit)]);
            if (limit.Burst != LimitMatch.DefaultBurst) args.AddRange(["--limit-burst", limit.Burst.ToString(CultureInfo.InvariantCulture)]);
        }
        if (rule.Name is { } name)
        {
            if (Encoding.UTF8.GetByteCount(name) > IptablesRuleSpec.MaxCommentBytes)
                throw Inexpressible($"the rule's name is longer than iptables' {IptablesRuleSpec.MaxCommentBytes}-byte comments");
            args.AddRange(["-m", "comment", "--comment", name]);
        }
        Target(args, rule.Verdict, m, family);
        return args;
    }

    /// <summary>Writes an address condition; returns the prefixes of a comma list (which iptables expands), else none.</summary>
    private static IReadOnlyList<IpPrefix> Addresses(List<string> args, List<string> ranges, AddressMatch? match, string option, string rangeOption, IpFamily family)
    {
        if (match is null) return [];
        var field = option == "-s" ? "source" : "destination";
        if (match.Set is { } set)
            throw Inexpressible($"the {field} is the set @{set}, and iptables matches sets only through ipset, which bpfilter does not write");
        if (match.Prefixes.Count == 1)
        {
            if (match.Negated && match.Prefixes[0].Length == 0) throw Inexpressible($"the {field} {match} never matches, and iptables refuses it");
            Add(args, match.Negated, option, Prefix(match.Prefixes[0]));
            return [];
        }
        if (AddressRanges.AsRange(match.Prefixes) is var (first, last))
        {
            ranges.AddRange([.. Negation(match.Negated), rangeOption,
                $"{AddressRanges.FormatAddress(family, first)}-{AddressRanges.FormatAddress(family, last)}"]);
            return [];
        }
        if (match.Negated)
            throw Inexpressible($"iptables cannot negate a list of addresses, and the {field}s {match} are not one range (which -m iprange could negate)");
        Add(args, false, option, string.Join(',', match.Prefixes.Select(Prefix)));
        return match.Prefixes;
    }

    private static string Prefix(IpPrefix prefix) => prefix.IsHost ? $"{prefix}/{prefix.Length}" : prefix.ToString();

    private static void Interface(List<string> args, InterfaceMatch? match, string option)
    {
        if (match is null) return;
        if (match.Name.EndsWith('+')) throw Inexpressible($"iptables reads the trailing '+' of '{match.Name}' as a wildcard");
        Add(args, match.Negated, option, match.Name);
    }

    /// <summary>
    /// The rate as iptables prints it. iptables keeps the time between packets, in ten-thousandths of a second
    /// rounded down, and prints it per the longest unit (day, hour, minute, second) down to which the unit still
    /// holds whole packets with less left over than their number.
    /// </summary>
    internal static string ListedRate(LimitMatch limit)
    {
        const ulong scale = 10_000;
        ulong interval = scale * (ulong)limit.Unit / limit.Count;
        var (unit, name) = (RateUnit.Day, "day");
        foreach (var (next, nextName) in new[] { (RateUnit.Hour, "hour"), (RateUnit.Minute, "min"), (RateUnit.Second, "sec") })
        {
            ulong span = scale * (ulong)next;
            if (interval > span || span / interval < span % interval) break;
            (unit, name) = (next, nextName);
        }
        return $"{scale * (ulong)unit / interval}/{name}";
    }

    private static void Transport(List<string> args, Match m, bool listed)
    {
        var single = new List<string>();
        foreach (var (port, option) in new[] { (m.SourcePort, "--sport"), (m.DestinationPort, "--dport") })
        {
            if (port is null) continue;
            if (port.Set is { } set) throw Inexpressible($"the port is the set @{set}, and iptables matches sets only through ipset, which bpfilter does not write");
            if (port.Ranges.Count == 1 && !NeedsMultiport(port)) single.AddRange([.. Negation(port.Negated), option, PortText(port.Ranges[0])]);
        }
        if (m.TcpFlags is { } flags)
        {
            if (((flags.Mask | flags.Set) & ~IptablesNames.AllFlags) != 0)
                throw Inexpressible($"iptables matches the flags FIN, SYN, RST, PSH, ACK and URG only, not {TcpFlagNames.Format((flags.Mask | flags.Set) & ~IptablesNames.AllFlags)}");
            single.AddRange(!listed && flags.Mask == TcpFlagsMatch.Syn.Mask && flags.Set == TcpFlagsMatch.Syn.Set
                ? [.. Negation(flags.Negated), "--syn"]
                : [.. Negation(flags.Negated), "--tcp-flags", IptablesNames.FormatTcpFlags(flags.Mask), IptablesNames.FormatTcpFlags(flags.Set)]);
        }
        if (single.Count > 0) args.AddRange(["-m", m.Protocol!.Protocol.Number == 6 ? "tcp" : "udp", .. single]);
    }

    /// <summary>
    /// iptables-nft stores -m tcp's "! --dport 0:N" as "--dport N+1:65535" and drops "--dport 0:65535" (which no
    /// longer leaves out fragments then); -m multiport keeps both as written, with the same meaning.
    /// </summary>
    private static bool NeedsMultiport(PortMatch port) =>
        port.Ranges is [{ First: 0, Last: > 0 } range] && (port.Negated || range.Last == ushort.MaxValue);

    private static void Multiport(List<string> args, PortMatch? port, string option)
    {
        if (port is null || port.Set is not null || port.Ranges.Count == 1 && !NeedsMultiport(port)) return;
        int slots = port.Ranges.Sum(r => r.First == r.Last ? 1 : 2);
        if (slots > MaxMultiportSlots)
            throw Inexpressible($"iptables' -m multiport holds {MaxMultiportSlots} ports (a range counts two), and the list {port} needs {slots}");
        args.AddRange(["-m", "multiport", .. Negation(port.Negated), option, string.Join(',', port.Ranges.Select(PortText))]);
    }

    private static string PortText(PortRange range) =>
        range.First == range.Last ? range.First.ToString(CultureInfo.InvariantCulture) : $"{range.First}:{range.Last}";

    private static void Icmp(List<string> args, Match m, bool v6)
    {
        if (m.IcmpType is null)
        {
            if (m.IcmpCode is not null) throw Inexpressible("iptables matches an ICMP code only together with a type");
            return;
        }
        var type = m.IcmpType;
        if (type.First != type.Last) throw Inexpressible($"iptables matches one ICMP type, not the range {type}");
        if (!v6 && type.First == 255) throw Inexpressible("iptables reads ICMP type 255 as every type");
        var text = type.First.ToString(CultureInfo.InvariantCulture);
        if (m.IcmpCode is { } code)
        {
            if (code.First != code.Last || code.Negated) throw Inexpressible($"iptables matches one ICMP code with a type, not {code}");
            if (type.Negated) throw Inexpressible("iptables negates an ICMP type and code together, which the rule's separate conditions do not mean");
            text += "/" + code.First.ToString(CultureInfo.InvariantCulture);
        }
        args.AddRange(v6 ? ["-m", "icmp6", .. Negation(type.Negated), "--icmpv6-type", text] : ["-m", "icmp", .. Negation(type.Negated), "--icmp-type", text]);
    }

    private static string ValueRange(RangeMatch range) =>
        range.First == range.Last ? range.First.ToString(CultureInfo.InvariantCulture) : $"{range.First}:{range.Last}";

    /// <summary>TTL or hop limit: iptables says equal (negatable), less than or greater than, so only ranges that touch 0 or 255 fit.</summary>
    private static void Hops(List<string> args, RangeMatch range, string module)
    {
        var (first, last) = (range.First, range.Last);
        string[] option =
            first == last ? [.. Negation(range.Negated), $"--{module}-eq", first.ToString(CultureInfo.InvariantCulture)]
            : first == 0 && last < 255 ? range.Negated ? [$"--{module}-gt", last.ToString(CultureInfo.InvariantCulture)] : [$"--{module}-lt", (last + 1).ToString(CultureInfo.InvariantCulture)]
            : last == 255 && first > 0 ? range.Negated ? [$"--{module}-lt", first.ToString(CultureInfo.InvariantCulture)] : [$"--{module}-gt", (first - 1).ToString(CultureInfo.InvariantCulture)]
            : throw Inexpressible($"iptables matches a {(module == "ttl" ? "TTL" : "hop limit")} equal to, below or above a value, not {range}");
        args.AddRange(["-m", module, .. option]);
    }

    private static void Target(List<string> args, Verdict verdict, Match m, IpFamily family)
    {
        switch (verdict.Kind)
        {
            case VerdictKind.Continue:
                return;
            case VerdictKind.Accept or VerdictKind.Drop or VerdictKind.Return:
                args.AddRange(["-j", verdict.Kind.ToString().ToUpperInvariant()]);
                return;
            case VerdictKind.Jump or VerdictKind.Goto:
                var chain = verdict.Target!;
                if (IptablesNames.BuiltInTargets.Contains(chain) || IptablesNames.UnsupportedTargets.Contains(chain))
                    throw Inexpressible($"iptables reads -j {chain} as its target {chain}, not as the chain '{chain}'");
                if (chain.Length > IptablesRuleSpec.MaxChainNameLength)
                    throw Inexpressible($"the chain name '{chain}' is longer than iptables' {IptablesRuleSpec.MaxChainNameLength} characters");
                args.AddRange([verdict.Kind == VerdictKind.Jump ? "-j" : "-g", chain]);
                return;
            case VerdictKind.Log:
                args.AddRange(["-j", "LOG"]);
                if (verdict.LogPrefix is { Length: > 0 } prefix)
                {
                    if (Encoding.UTF8.GetByteCount(prefix) > IptablesRuleSpec.MaxLogPrefixBytes)
                        throw Inexpressible($"the log prefix '{prefix}' is longer than iptables' {IptablesRuleSpec.MaxLogPrefixBytes} bytes");
                    args.AddRange(["--log-prefix", prefix]);
                }
                return;
            default:
                bool tcp = m.Protocol is { Negated: false, Protocol.Number: 6 };
                var with = verdict.With;
                if (with == RejectWith.Default)
                {
                    // The model's default answers TCP with a reset and everything else with port unreachable.
                    if (m.Protocol is not { Negated: false }) throw Inexpressible(
                        "reject's default answers TCP with a reset and other packets with port unreachable, which one iptables rule cannot say: "
                        + "write reject with tcp-reset for protocol tcp and reject with port-unreachable for the rest");
                    with = tcp ? RejectWith.TcpReset : RejectWith.PortUnreachable;
                }
                if (with == RejectWith.TcpReset && !tcp) throw Inexpressible("iptables sends a TCP reset only for rules with -p tcp");
                var name = IptablesNames.FormatReject(with, family)
                    ?? throw Inexpressible($"ip6tables cannot reject with {RejectWithNames.Format(with)}: use {string.Join(", ", IptablesNames.RejectNames(family))}");
                args.AddRange(["-j", "REJECT", "--reject-with", name]);
                return;
        }
    }

    private static string[] Negation(bool negated) => negated ? ["!"] : [];

    private static void Add(List<string> args, bool negated, string option, params string[] values)
    {
        if (negated) args.Add("!");
        args.Add(option);
        args.AddRange(values);
    }
}
