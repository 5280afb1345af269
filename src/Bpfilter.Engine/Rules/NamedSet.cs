namespace Bpfilter.Engine.Rules;

/// <summary>The type of a set's elements.</summary>
public enum SetType
{
    Ipv4Address,
    Ipv4Network,
    Ipv6Address,
    Ipv6Network,
    Port,
}

/// <summary>The names of <see cref="SetType"/> in the ruleset language: ipv4-addr, ipv4-net, ipv6-addr, ipv6-net, port.</summary>
public static class SetTypeNames
{
    private static readonly (string Name, SetType Type)[] All =
    [
        ("ipv4-addr", SetType.Ipv4Address), ("ipv4-net", SetType.Ipv4Network), ("ipv6-addr", SetType.Ipv6Address),
        ("ipv6-net", SetType.Ipv6Network), ("port", SetType.Port),
    ];

    public static IEnumerable<string> Names => All.Select(a => a.Name);

    public static SetType Parse(string text) =>
        All.FirstOrDefault(a => a.Name.Equals(text, StringComparison.OrdinalIgnoreCase)) is { Name: not null } found
            ? found.Type
            : throw new RulesetValidationException($"'{text}' is not a set type: use {string.Join(", ", Names)}", "type");

    public static string Format(SetType type) => All.First(a => a.Type == type).Name;

    public static IpFamily? FamilyOf(SetType type) => type switch
    {
        SetType.Ipv4Address or SetType.Ipv4Network => IpFamily.Ipv4,
        SetType.Ipv6Address or SetType.Ipv6Network => IpFamily.Ipv6,
        _ => null,
    };

    public static bool IsAddress(SetType type) => type != SetType.Port;
}

/// <summary>One element of a set: an address or network (address sets) or a port range (port sets).</summary>
public readonly record struct SetElement
{
    public SetElement(IpPrefix prefix) => Prefix = prefix;
    public SetElement(PortRange ports) => Ports = ports;

    public IpPrefix? Prefix { get; }
    public PortRange? Ports { get; }

    public static SetElement Parse(SetType type, string text) =>
        type == SetType.Port ? new(PortRange.Parse(text, "elements")) : new(IpPrefix.Parse(text));

    public override string ToString() => Prefix?.ToString() ?? Ports!.Value.ToString();
}

/// <summary>
/// A named, typed set that rules refer to as @name. Deployed as a map: a hash for addresses and ports, an LPM trie for
/// networks, so its members change without reloading the program.
/// </summary>
public sealed record NamedSet
{
    /// <summary>The most elements a set may hold; the map is created this large.</summary>
    public const int MaxElements = 65536;

    public NamedSet(string name, SetType type, IEnumerable<SetElement> elements)
    {
        Names.CheckSetName(name);
        Name = name;
        Type = type;
        var list = elements.Distinct().ToList();
        foreach (var element in list) Check(element);
        if (list.Count > MaxElements) throw new RulesetValidationException($"set '{name}' has {list.Count} elements, more than {MaxElements}", "elements");
        Elements = new ValueList<SetElement>(list);
    }

    public string Name { get; }
    public SetType Type { get; }
    public ValueList<SetElement> Elements { get; }
    public IpFamily? Family => SetTypeNames.FamilyOf(Type);

    /// <summary>Refuses an element that does not fit the set's type.</summary>
    public void Check(SetElement element)
    {
        bool fits = Type switch
        {
            SetType.Port => element.Ports is not null,
            SetType.Ipv4Address => element.Prefix is { Family: IpFamily.Ipv4, IsHost: true },
            SetType.Ipv6Address => element.Prefix is { Family: IpFamily.Ipv6, IsHost: true },
            SetType.Ipv4Network => element.Prefix is { Family: IpFamily.Ipv4 },
            SetType.Ipv6Network => element.Prefix is { Family: IpFamily.Ipv6 },
            _ => false,
        };
        if (!fits)
            throw new RulesetValidationException($"'{element}' is not an element of set '{Name}' of type {SetTypeNames.Format(Type)}", "elements");
    }
}
