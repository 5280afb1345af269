namespace Bpfilter.Engine.Rules;

/// <summary>
/// The connection-tracking states of a packet, as iptables' -m conntrack --ctstate names them (each packet is in
/// exactly one). What each hook can know is in about_Bpfilter_Stateful.
/// </summary>
[Flags]
public enum CtStates : byte
{
    None = 0,
    /// <summary>The packet starts a connection, or belongs to one that has seen no reply yet.</summary>
    New = 1,
    /// <summary>The packet belongs to a connection that has seen packets both ways (every reply is established).</summary>
    Established = 2,
    /// <summary>The packet starts a connection that an existing one expected, or is an ICMP error about an existing one.</summary>
    Related = 4,
    /// <summary>Connection tracking attached no connection to the packet: it fits none and starts none.</summary>
    Invalid = 8,
    /// <summary>The packet is not tracked: exempted in the kernel (NOTRACK), or, at xdp and tc-ingress, not one the lookup can ask about.</summary>
    Untracked = 16,
}

/// <summary>Reads and writes states as names: "established,related" (any case; iptables' ESTABLISHED,RELATED too).</summary>
public static class CtStateNames
{
    private static readonly (string Name, CtStates State)[] All =
    [
        ("new", CtStates.New), ("established", CtStates.Established), ("related", CtStates.Related),
        ("invalid", CtStates.Invalid), ("untracked", CtStates.Untracked),
    ];

    public static IReadOnlyList<string> Names { get; } = All.Select(a => a.Name).ToArray();

    /// <summary>One name: "new", "ESTABLISHED".</summary>
    public static CtStates ParseOne(string name)
    {
        var trimmed = name.Trim();
        foreach (var (n, state) in All)
        {
            if (string.Equals(n, trimmed, StringComparison.OrdinalIgnoreCase)) return state;
        }
        var hint = trimmed.ToUpperInvariant() is "SNAT" or "DNAT" ? " (the NAT states are not supported: Bpfilter does no NAT)" : "";
        throw new RulesetValidationException($"'{name}' is not a connection state: use {string.Join(", ", Names)}{hint}", "ct-state");
    }

    /// <summary>Names joined by commas: "established,related".</summary>
    public static CtStates Parse(string text)
    {
        var states = CtStates.None;
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries)) states |= ParseOne(part);
        return states;
    }

    /// <summary>"established,related", in the order of <see cref="Names"/>.</summary>
    public static string Format(CtStates states) => string.Join(',', All.Where(a => states.HasFlag(a.State)).Select(a => a.Name));
}

/// <summary>The packet's connection state is one of <see cref="States"/> (or, negated, none of them).</summary>
public sealed record CtStateMatch
{
    public CtStateMatch(CtStates states, bool negated = false)
    {
        if (states == CtStates.None || (states & ~(CtStates.New | CtStates.Established | CtStates.Related | CtStates.Invalid | CtStates.Untracked)) != 0)
            throw new RulesetValidationException($"ct-state needs at least one of {string.Join(", ", CtStateNames.Names)}", "ct-state");
        States = states;
        Negated = negated;
    }

    public CtStates States { get; }
    public bool Negated { get; }

    /// <summary>"established,related" or "!new"; a leading '!' negates the whole list.</summary>
    public static CtStateMatch Parse(string text)
    {
        var trimmed = text.Trim();
        bool negated = trimmed.StartsWith('!');
        return new CtStateMatch(CtStateNames.Parse(negated ? trimmed[1..] : trimmed), negated);
    }

    /// <summary>A list of names ("established", "related"); a '!' before the first negates them all.</summary>
    public static CtStateMatch Parse(IReadOnlyList<string> names)
    {
        if (names.Count == 0) throw new RulesetValidationException($"ct-state needs at least one of {string.Join(", ", CtStateNames.Names)}", "ct-state");
        var first = names[0].Trim();
        bool negated = first.StartsWith('!');
        var states = CtStates.None;
        for (int i = 0; i < names.Count; i++)
        {
            var name = i == 0 && negated ? first[1..] : names[i];
            if (i > 0 && name.TrimStart().StartsWith('!'))
                throw new RulesetValidationException("ct-state: '!' goes once, before the first state, and negates the whole list", "ct-state");
            states |= CtStateNames.Parse(name);
        }
        return new CtStateMatch(states, negated);
    }

    public bool Holds(CtStates state) => ((States & state) != 0) != Negated;

    public override string ToString() => (Negated ? "!" : "") + CtStateNames.Format(States);
}

/// <summary>Which way a packet goes in its connection (iptables' --ctdir).</summary>
public enum CtDirection
{
    /// <summary>The way the connection's first packet went.</summary>
    Original,
    /// <summary>Back towards whoever started the connection.</summary>
    Reply,
}

/// <summary>"original" and "reply" (any case: iptables writes ORIGINAL and REPLY).</summary>
public static class CtDirectionNames
{
    public static CtDirection Parse(string text) => text.Trim().ToLowerInvariant() switch
    {
        "original" => CtDirection.Original,
        "reply" => CtDirection.Reply,
        _ => throw new RulesetValidationException($"'{text}' is not a connection direction: use original or reply", "ct-direction"),
    };

    public static string Format(CtDirection direction) => direction == CtDirection.Original ? "original" : "reply";
}
