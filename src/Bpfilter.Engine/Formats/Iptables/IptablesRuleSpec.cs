using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Formats.Iptables;

/// <summary>A rule as iptables names it: the chain it is appended to and the rule.</summary>
public sealed record IptablesRule(string Chain, Rule Rule);

/// <summary>
/// iptables' command-line rule specifications (what follows "iptables" in "iptables -A INPUT -p tcp --dport 22 -j
/// ACCEPT", and what every rule line of iptables-save holds) read into the rules model and written back.
/// <para>
/// Reading is exact or refuses: every option bpfilter knows becomes the condition iptables means by it, and anything
/// else (an unknown option, match module or target, or a combination the model cannot say exactly) is an
/// <see cref="IptablesRuleSpecException"/> naming the argument. The rule is limited to the family of the iptables
/// (IPv4) or ip6tables (IPv6) that would read it: its <see cref="Match.Family"/> is set. The comment
/// (-m comment --comment) becomes the rule's name, without leading and trailing spaces; an empty one names nothing.
/// </para>
/// <para>
/// A comma list of addresses (-s a,b) stays one rule with a list of prefixes. iptables makes one rule per address
/// of it (per pair of addresses, with -s and -d lists), which means the same unless the rule has a limit (one
/// bucket per rule) or logs or jumps while two addresses of a list overlap (the packet would be logged twice): those
/// are refused. A range (-m iprange --src-range a-b) becomes the fewest prefixes that cover it.
/// </para>
/// </summary>
public static class IptablesRuleSpec
{
    /// <summary>Reads "-A CHAIN" (or "--append CHAIN") and the rule specification after it.</summary>
    public static IptablesRule Parse(IReadOnlyList<string> args, IpFamily family)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Count == 0 || args[0] is not ("-A" or "--append"))
            throw new IptablesRuleSpecException(0, args.Count > 0 ? args[0] : null,
                args.Count == 0 ? "the rule is empty: a rule starts with -A CHAIN" : $"'{args[0]}': a rule starts with -A CHAIN");
        if (args.Count < 2) throw new IptablesRuleSpecException(0, args[0], $"{args[0]} needs a chain name");
        var chain = args[1];
        try
        {
            Names.CheckChainName(chain);
        }
        catch (RulesetValidationException e)
        {
            throw new IptablesRuleSpecException(1, args[0], e.Message);
        }
        var rule = ParseRule(args, 2, family);
        if (HookProblem(chain, rule) is { } problem)
        {
            var at = args.Select((arg, i) => (arg, i)).Skip(2).FirstOrDefault(a => a.arg == problem.Option || a.arg == problem.LongOption).i;
            throw new IptablesRuleSpecException(at, problem.Option, problem.Reason);
        }
        return new IptablesRule(chain, rule);
    }

    /// <summary>iptables refuses -o in INPUT and -i in OUTPUT: those packets have no such interface.</summary>
    private static (string Option, string LongOption, string Reason)? HookProblem(string chain, Rule rule) => chain switch
    {
        "INPUT" when rule.Match.OutInterface is not null =>
            ("-o", "--out-interface", "INPUT sees packets for this host, which have no out-interface: iptables refuses -o there"),
        "OUTPUT" when rule.Match.InInterface is not null =>
            ("-i", "--in-interface", "OUTPUT sees packets this host sends, which have no in-interface: iptables refuses -i there"),
        _ => null,
    };

    /// <summary>
    /// Reads the rule specification (matches and target) in <paramref name="args"/> from <paramref name="start"/> on:
    /// what follows "-A CHAIN", "-I CHAIN [N]" or "-D CHAIN". Error positions count from the start of <paramref name="args"/>.
    /// </summary>
    public static Rule ParseRule(IReadOnlyList<string> args, int start, IpFamily family)
    {
        ArgumentNullException.ThrowIfNull(args);
        return new IptablesRuleSpecParser(args, family).Parse(start);
    }

    /// <summary>The rule as "-A CHAIN ..." arguments that iptables (IPv4) or ip6tables (IPv6) reads back into the same rule.</summary>
    public static IReadOnlyList<string> Format(IptablesRule rule, IpFamily family)
    {
        ArgumentNullException.ThrowIfNull(rule);
        var chain = rule.Chain;
        if (chain.Length > MaxChainNameLength)
            throw IptablesRuleFormatter.Inexpressible($"the chain name '{chain}' is longer than iptables' {MaxChainNameLength} characters");
        if (HookProblem(chain, rule.Rule) is { } problem) throw IptablesRuleFormatter.Inexpressible(problem.Reason);
        return ["-A", chain, .. FormatRule(rule.Rule, family)];
    }

    /// <summary>
    /// The rule specification (matches and target) of <paramref name="rule"/>; a BpfilterException IptablesInexpressible
    /// when iptables cannot say what the rule means (a set, a range of ICMP types, a first-fragment match, ...).
    /// </summary>
    public static IReadOnlyList<string> FormatRule(Rule rule, IpFamily family)
    {
        ArgumentNullException.ThrowIfNull(rule);
        return IptablesRuleFormatter.Format(rule, family);
    }

    /// <summary>
    /// The rule specification as iptables -S prints it (protocols by the names of <paramref name="names"/>, --syn as
    /// its flags, limits in iptables' unit), or IptablesInexpressible as <see cref="FormatRule"/>.
    /// </summary>
    public static IReadOnlyList<string> FormatListedRule(Rule rule, IpFamily family, IptablesNameLookup names)
    {
        ArgumentNullException.ThrowIfNull(rule);
        ArgumentNullException.ThrowIfNull(names);
        return IptablesRuleFormatter.Format(rule, family, names);
    }

    private static UInt128 End(IpPrefix prefix) => prefix.Address | AddressRanges.HostMask(prefix.Bits, prefix.Length);

    /// <summary>iptables' longest chain name (XT_EXTENSION_MAXNAMELEN less its NUL).</summary>
    public const int MaxChainNameLength = 28;

    /// <summary>iptables' longest comment, in UTF-8 bytes.</summary>
    public const int MaxCommentBytes = 255;

    /// <summary>iptables' longest log prefix, in bytes.</summary>
    public const int MaxLogPrefixBytes = 29;

    /// <summary>
    /// Why one rule with these comma lists of addresses would not mean what iptables' one rule per address (per pair)
    /// means, or null when it would. Continue, accept, drop, reject, return and goto decide at the first of the
    /// expanded rules that matches, so only a limit and logging or jumping on overlapping addresses differ.
    /// </summary>
    internal static string? ExpansionProblem(IReadOnlyList<IpPrefix> sources, IReadOnlyList<IpPrefix> destinations, bool limited, Verdict verdict)
    {
        if (Math.Max(1, sources.Count) * Math.Max(1, destinations.Count) <= 1) return null;
        if (limited)
            return "iptables makes one rule per address of a comma list, each with its own -m limit bucket, which one rule with a list cannot be: write one rule per address";
        if (verdict.Kind is not (VerdictKind.Log or VerdictKind.Jump)) return null;
        foreach (var list in new[] { sources, destinations })
        {
            // In address order, a prefix overlaps an earlier one exactly when it starts before the furthest end so far.
            IpPrefix? furthest = null;
            foreach (var prefix in list.OrderBy(p => p.Address).ThenBy(p => p.Length))
            {
                if (furthest is { } f && prefix.Address <= End(f))
                    return $"{f} and {prefix} overlap: iptables makes one rule per address of a comma list, so a packet in both would "
                        + $"{(verdict.Kind == VerdictKind.Log ? "be logged" : "jump")} twice, which one rule with a list cannot say: write one rule per address";
                if (furthest is null || End(prefix) > End(furthest.Value)) furthest = prefix;
            }
        }
        return null;
    }
}
