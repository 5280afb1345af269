namespace Bpfilter.Engine.Rules;

/// <summary>
/// The conditions of a rule; every one that is set must hold (logical AND). An empty match matches every packet.
/// The rule's family comes from <see cref="Family"/> or from what the conditions imply (IPv4 addresses, ttl, icmp
/// imply IPv4; IPv6 addresses, hop-limit, icmpv6 imply IPv6); a rule with neither applies to both. Ports need tcp or
/// udp, tcp-flags tcp, icmp-type and icmp-code icmp or icmpv6, as in iptables. <see cref="Rule"/> checks all this.
/// </summary>
public sealed record Match
{
    public static Match Any { get; } = new();

    /// <summary>The family the rule is limited to, when the ruleset says so explicitly.</summary>
    public IpFamily? Family { get; init; }

    public InterfaceMatch? InInterface { get; init; }
    public InterfaceMatch? OutInterface { get; init; }
    public AddressMatch? Source { get; init; }
    public AddressMatch? Destination { get; init; }
    public ProtocolMatch? Protocol { get; init; }
    public PortMatch? SourcePort { get; init; }
    public PortMatch? DestinationPort { get; init; }
    public TcpFlagsMatch? TcpFlags { get; init; }
    public RangeMatch? IcmpType { get; init; }
    public RangeMatch? IcmpCode { get; init; }

    /// <summary>The IP packet's length: IPv4's total length, IPv6's payload length plus its 40-byte header (iptables -m length).</summary>
    public RangeMatch? Length { get; init; }
    public FragmentMatch? Fragment { get; init; }
    public RangeMatch? Dscp { get; init; }
    public RangeMatch? Ttl { get; init; }
    public RangeMatch? HopLimit { get; init; }
    public MarkMatch? Mark { get; init; }
    public LimitMatch? Limit { get; init; }

    /// <summary>The packet's connection-tracking state (iptables -m conntrack --ctstate, -m state --state).</summary>
    public CtStateMatch? CtState { get; init; }

    /// <summary>
    /// The packet goes this way in its connection (iptables --ctdir). A packet without a connection (invalid,
    /// untracked) has no direction: it fails a rule with ct-direction alone, and a rule with ct-state as well judges it
    /// by the state only, as iptables does.
    /// </summary>
    public CtDirection? CtDirection { get; init; }

    /// <summary>True when the match has no condition, so it matches every IP packet.</summary>
    public bool IsAny => this == Any;

    /// <summary>The family the conditions limit the rule to (explicit or implied); null for both. Call <see cref="Validate"/> first.</summary>
    public IpFamily? ImpliedFamily
    {
        get
        {
            if (Family is { } f) return f;
            if (Source?.Family is { } s) return s;
            if (Destination?.Family is { } d) return d;
            if (Ttl is not null) return IpFamily.Ipv4;
            if (HopLimit is not null) return IpFamily.Ipv6;
            if (Protocol is { Negated: false } p && (IcmpType is not null || IcmpCode is not null))
                return p.Protocol == IpProtocol.Icmp ? IpFamily.Ipv4 : IpFamily.Ipv6;
            return null;
        }
    }

    /// <summary>True when the rule needs a transport header it can read (ports, TCP flags, ICMP type).</summary>
    public bool NeedsTransport => SourcePort is not null || DestinationPort is not null || TcpFlags is not null || IcmpType is not null || IcmpCode is not null;

    /// <summary>Refuses combinations that cannot mean anything: ports without tcp or udp, IPv4 and IPv6 together, ...</summary>
    public void Validate()
    {
        if ((SourcePort is not null || DestinationPort is not null) && Protocol is not { Negated: false, Protocol.HasPorts: true })
            throw new RulesetValidationException(
                $"{(SourcePort is not null ? "source-port" : "destination-port")} needs protocol tcp or udp"
                + (Protocol is { } p ? $", not {p}" : ""),
                SourcePort is not null ? "source-port" : "destination-port");
        if (TcpFlags is not null && Protocol is not { Negated: false, Protocol.Number: 6 })
            throw new RulesetValidationException("tcp-flags needs protocol tcp", "tcp-flags");
        if ((IcmpType is not null || IcmpCode is not null) && Protocol is not { Negated: false, Protocol.IsIcmp: true })
            throw new RulesetValidationException($"{(IcmpType is not null ? "icmp-type" : "icmp-code")} needs protocol icmp or icmpv6", IcmpType is not null ? "icmp-type" : "icmp-code");
        if (IcmpType is not null && IcmpType.Last > 255 || IcmpCode is not null && IcmpCode.Last > 255)
            throw new RulesetValidationException("ICMP types and codes are 0 to 255", IcmpType is not null ? "icmp-type" : "icmp-code");
        if (Dscp is { Last: > 63 }) throw new RulesetValidationException("dscp is 0 to 63", "dscp");
        if (Ttl is { Last: > 255 }) throw new RulesetValidationException("ttl is 0 to 255", "ttl");
        if (HopLimit is { Last: > 255 }) throw new RulesetValidationException("hop-limit is 0 to 255", "hop-limit");
        if (Length is { Last: > 65535 + 40 }) throw new RulesetValidationException("length is 0 to 65575", "length");

        // Every condition that implies a family must imply the same one.
        var implied = new List<(string Field, IpFamily Family)>();
        if (Family is { } f) implied.Add(("family", f));
        if (Source?.Family is { } s) implied.Add(("source", s));
        if (Destination?.Family is { } d) implied.Add(("destination", d));
        if (Ttl is not null) implied.Add(("ttl", IpFamily.Ipv4));
        if (HopLimit is not null) implied.Add(("hop-limit", IpFamily.Ipv6));
        if (Protocol is { Negated: false, Protocol.IsIcmp: true } icmp && (IcmpType is not null || IcmpCode is not null))
            implied.Add(("protocol", icmp.Protocol == IpProtocol.Icmp ? IpFamily.Ipv4 : IpFamily.Ipv6));
        var clash = implied.FirstOrDefault(i => i.Family != implied[0].Family);
        if (clash.Field is not null)
            throw new RulesetValidationException(
                $"{implied[0].Field} makes the rule {FamilyName(implied[0].Family)}, but {clash.Field} makes it {FamilyName(clash.Family)}: write one rule for each family",
                clash.Field);
    }

    public static string FamilyName(IpFamily family) => family == IpFamily.Ipv4 ? "ipv4" : "ipv6";

    /// <summary>The match in the ruleset language's own key names, for listings: "protocol tcp destination-port 23".</summary>
    public override string ToString()
    {
        var parts = new List<string>();
        void Add(string key, object? value)
        {
            if (value is not null) parts.Add($"{key} {value}");
        }
        Add("family", Family is { } f ? FamilyName(f) : null);
        Add("in-interface", InInterface);
        Add("out-interface", OutInterface);
        Add("source", Source);
        Add("destination", Destination);
        Add("protocol", Protocol);
        Add("source-port", SourcePort);
        Add("destination-port", DestinationPort);
        Add("tcp-flags", TcpFlags);
        Add("icmp-type", IcmpType);
        Add("icmp-code", IcmpCode);
        Add("length", Length);
        Add("fragment", Fragment);
        Add("dscp", Dscp);
        Add("ttl", Ttl);
        Add("hop-limit", HopLimit);
        Add("mark", Mark);
        Add("ct-state", CtState);
        Add("ct-direction", CtDirection is { } direction ? CtDirectionNames.Format(direction) : null);
        Add("limit", Limit);
        return parts.Count == 0 ? "any" : string.Join(' ', parts);
    }
}
