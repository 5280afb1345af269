namespace Bpfilter.Engine.Rules;

/// <summary>What a verdict does with the packet.</summary>
public enum VerdictKind
{
    /// <summary>Let the packet through; no later rule sees it.</summary>
    Accept,
    /// <summary>Discard the packet silently.</summary>
    Drop,
    /// <summary>Discard the packet and answer the sender (a TCP reset or an ICMP error).</summary>
    Reject,
    /// <summary>Count the packet and go on with the next rule.</summary>
    Continue,
    /// <summary>Leave a user chain for the rule after the jump that entered it; at a hooked chain, apply its policy.</summary>
    Return,
    /// <summary>Run a user chain; when it returns (or ends), go on after this rule.</summary>
    Jump,
    /// <summary>Run a user chain instead of the rest of this chain; when it returns, go back to whoever jumped here.</summary>
    Goto,
    /// <summary>Record the packet in the deployment's log and go on with the next rule.</summary>
    Log,
}

/// <summary>The reply a reject sends.</summary>
public enum RejectWith
{
    /// <summary>A TCP reset for TCP, ICMP or ICMPv6 port unreachable otherwise.</summary>
    Default,
    TcpReset,
    PortUnreachable,
    HostUnreachable,
    NetUnreachable,
    ProtocolUnreachable,
    AdministrativelyProhibited,
    /// <summary>ICMP code 10; ICMPv6 has none, so IPv6 gets administratively prohibited (code 1).</summary>
    HostProhibited,
    /// <summary>ICMP code 9; ICMPv6 has none, so IPv6 gets administratively prohibited (code 1).</summary>
    NetProhibited,
}

/// <summary>
/// What happens to a packet that a rule matches, or that reaches the end of a hooked chain (the policy: accept or
/// drop). <see cref="Target"/> names the user chain of a jump or goto, <see cref="LogPrefix"/> the prefix of a log.
/// </summary>
public sealed record Verdict
{
    public static readonly Verdict Accept = new(VerdictKind.Accept), Drop = new(VerdictKind.Drop),
        Continue = new(VerdictKind.Continue), Return = new(VerdictKind.Return);

    public const int MaxLogPrefixLength = 64;

    private Verdict(VerdictKind kind, string? target = null, RejectWith with = RejectWith.Default, string? logPrefix = null)
    {
        Kind = kind;
        Target = target;
        With = with;
        LogPrefix = logPrefix;
    }

    public static Verdict Reject(RejectWith with = RejectWith.Default) => new(VerdictKind.Reject, with: with);

    public static Verdict Jump(string chain)
    {
        Names.CheckChainName(chain);
        return new(VerdictKind.Jump, chain);
    }

    public static Verdict Goto(string chain)
    {
        Names.CheckChainName(chain);
        return new(VerdictKind.Goto, chain);
    }

    public static Verdict Log(string? prefix = null)
    {
        if (prefix is not null && (prefix.Length > MaxLogPrefixLength || prefix.Any(char.IsControl)))
            throw new RulesetValidationException($"a log prefix is at most {MaxLogPrefixLength} printable characters", "log");
        return new(VerdictKind.Log, logPrefix: prefix ?? "");
    }

    public VerdictKind Kind { get; }
    public string? Target { get; }
    public RejectWith With { get; }
    public string? LogPrefix { get; }

    /// <summary>True when the verdict ends the packet's way through the ruleset (accept, drop, reject).</summary>
    public bool IsFinal => Kind is VerdictKind.Accept or VerdictKind.Drop or VerdictKind.Reject;

    /// <summary>True when a later rule can still see the packet after this verdict (continue, log, jump).</summary>
    public bool GoesOn => Kind is VerdictKind.Continue or VerdictKind.Log or VerdictKind.Jump;

    /// <summary>The verdict in the ruleset language: "accept", "jump: LOGDROP", "reject with tcp-reset", "log 'IN: '".</summary>
    public override string ToString() => Kind switch
    {
        VerdictKind.Jump or VerdictKind.Goto => $"{Name(Kind)}: {Target}",
        VerdictKind.Reject when With != RejectWith.Default => $"reject with {RejectWithNames.Format(With)}",
        VerdictKind.Log when LogPrefix is { Length: > 0 } p => $"log '{p}'",
        _ => Name(Kind),
    };

    public static string Name(VerdictKind kind) => kind.ToString().ToLowerInvariant();

    /// <summary>Parses the name of a verdict that needs no argument: accept, drop, reject, continue, return, log.</summary>
    public static Verdict Parse(string text) => text.ToLowerInvariant() switch
    {
        "accept" => Accept,
        "drop" => Drop,
        "reject" => Reject(),
        "continue" => Continue,
        "return" => Return,
        "log" => Log(),
        "jump" or "goto" => throw new RulesetValidationException($"'{text}' needs a chain: write {text}: CHAIN", "action"),
        _ => throw new RulesetValidationException($"'{text}' is not a verdict: use accept, drop, reject, continue, return, log, jump: CHAIN or goto: CHAIN", "action"),
    };
}

/// <summary>The names of <see cref="RejectWith"/> in iptables' spelling (tcp-reset, icmp-port-unreachable, ...).</summary>
public static class RejectWithNames
{
    private static readonly Dictionary<string, RejectWith> ByName = new(StringComparer.OrdinalIgnoreCase)
    {
        ["tcp-reset"] = RejectWith.TcpReset,
        ["port-unreachable"] = RejectWith.PortUnreachable,
        ["host-unreachable"] = RejectWith.HostUnreachable,
        ["net-unreachable"] = RejectWith.NetUnreachable,
        ["protocol-unreachable"] = RejectWith.ProtocolUnreachable,
        ["admin-prohibited"] = RejectWith.AdministrativelyProhibited,
        ["host-prohibited"] = RejectWith.HostProhibited,
        ["net-prohibited"] = RejectWith.NetProhibited,
    };

    public static IReadOnlyCollection<string> Names => ByName.Keys;

    /// <summary>Reads a kind; iptables' icmp- and icmp6- prefixes (icmp-port-unreachable, icmp6-adm-prohibited) are accepted too.</summary>
    public static RejectWith Parse(string text)
    {
        var name = text.StartsWith("icmp6-", StringComparison.OrdinalIgnoreCase) ? text[6..]
            : text.StartsWith("icmp-", StringComparison.OrdinalIgnoreCase) ? text[5..] : text;
        name = name.ToLowerInvariant() switch
        {
            "adm-prohibited" => "admin-prohibited",
            "addr-unreachable" => "host-unreachable",
            "no-route" => "net-unreachable",
            "proto-unreachable" => "protocol-unreachable",
            "tcp-rst" => "tcp-reset",
            var n => n,
        };
        if (ByName.TryGetValue(name, out var with)) return with;
        throw new RulesetValidationException($"'{text}' is not a reject kind: use {string.Join(", ", ByName.Keys)}", "with");
    }

    public static string Format(RejectWith with) => with == RejectWith.Default ? "default" : ByName.First(n => n.Value == with).Key;
}
