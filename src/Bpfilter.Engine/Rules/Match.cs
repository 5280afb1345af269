namespace Bpfilter.Engine.Rules;

/// <summary>
/// The conditions of a rule; every one that is set must hold (logical AND). An empty match matches every packet.
/// Ports need the protocol to be tcp or udp, as in iptables.
/// </summary>
public sealed record Match
{
    public Match(Ipv4Prefix? source = null, Ipv4Prefix? destination = null, IpProtocol? protocol = null,
        ushort? sourcePort = null, ushort? destinationPort = null)
    {
        if ((sourcePort is not null || destinationPort is not null) && protocol is not { HasPorts: true })
            throw new RulesetValidationException(
                $"{(sourcePort is not null ? "source-port" : "destination-port")} needs protocol tcp or udp"
                + (protocol is { } p ? $", not {p}" : ""),
                sourcePort is not null ? "source-port" : "destination-port");
        Source = source;
        Destination = destination;
        Protocol = protocol;
        SourcePort = sourcePort;
        DestinationPort = destinationPort;
    }

    public static Match Any { get; } = new();

    /// <summary>True when the match has no condition, so it matches every IPv4 packet.</summary>
    public bool IsAny => Source is null or { Length: 0 } && Destination is null or { Length: 0 } && Protocol is null && SourcePort is null && DestinationPort is null;

    public Ipv4Prefix? Source { get; }
    public Ipv4Prefix? Destination { get; }
    public IpProtocol? Protocol { get; }
    public ushort? SourcePort { get; }
    public ushort? DestinationPort { get; }

    /// <summary>The match in the ruleset language's own key names, for listings: "protocol tcp destination-port 23".</summary>
    public override string ToString()
    {
        var parts = new List<string>();
        if (Source is { } s) parts.Add($"source {s}");
        if (Destination is { } d) parts.Add($"destination {d}");
        if (Protocol is { } p) parts.Add($"protocol {p}");
        if (SourcePort is { } sp) parts.Add($"source-port {sp}");
        if (DestinationPort is { } dp) parts.Add($"destination-port {dp}");
        return parts.Count == 0 ? "any" : string.Join(' ', parts);
    }
}
