using System.Globalization;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Formats.Iptables;

/// <summary>
/// The names iptables and ip6tables give to protocols, ICMP types, reject replies, TCP flags, DSCP classes and rate
/// units, as iptables 1.8 accepts and prints them.
/// </summary>
internal static class IptablesNames
{
    // The keywords of the IANA protocol list (/etc/protocols), which iptables-save prints through getprotobynumber,
    // plus the names iptables knows without that file. "ip" and "hopopt" (0) are left out: -p 0 means every protocol.
    private static readonly Dictionary<string, byte> Protocols = new(StringComparer.OrdinalIgnoreCase)
    {
        ["icmp"] = 1, ["igmp"] = 2, ["ggp"] = 3, ["ipencap"] = 4, ["st"] = 5, ["tcp"] = 6, ["egp"] = 8, ["igp"] = 9,
        ["pup"] = 12, ["udp"] = 17, ["hmp"] = 20, ["xns-idp"] = 22, ["rdp"] = 27, ["iso-tp4"] = 29, ["dccp"] = 33,
        ["xtp"] = 36, ["ddp"] = 37, ["idpr-cmtp"] = 38, ["ipv6"] = 41, ["ipv6-route"] = 43, ["ipv6-frag"] = 44,
        ["idrp"] = 45, ["rsvp"] = 46, ["gre"] = 47, ["esp"] = 50, ["ah"] = 51, ["skip"] = 57, ["ipv6-icmp"] = 58,
        ["icmpv6"] = 58, ["ipv6-nonxt"] = 59, ["ipv6-opts"] = 60, ["rspf"] = 73, ["vmtp"] = 81, ["eigrp"] = 88,
        ["ospf"] = 89, ["ax.25"] = 93, ["ipip"] = 94, ["etherip"] = 97, ["encap"] = 98, ["pim"] = 103, ["ipcomp"] = 108,
        ["vrrp"] = 112, ["l2tp"] = 115, ["isis"] = 124, ["sctp"] = 132, ["fc"] = 133, ["mobility-header"] = 135,
        ["mh"] = 135, ["ipv6-mh"] = 135, ["udplite"] = 136, ["mpls-in-ip"] = 137, ["manet"] = 138, ["hip"] = 139,
        ["shim6"] = 140, ["wesp"] = 141, ["rohc"] = 142, ["ethernet"] = 143,
    };

    // The names iptables itself knows (libxtables' own table), so they read even where /etc/protocols is missing.
    private static readonly Dictionary<byte, string> WrittenProtocols = new()
    {
        [1] = "icmp", [6] = "tcp", [17] = "udp", [50] = "esp", [51] = "ah", [58] = "ipv6-icmp", [132] = "sctp", [136] = "udplite",
    };

    /// <summary>A protocol name or number as -p takes it; null for "all" or 0, which mean every protocol.</summary>
    public static bool TryParseProtocol(string text, out byte? protocol)
    {
        protocol = null;
        if (text.Equals("all", StringComparison.OrdinalIgnoreCase)) return true;
        if (byte.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var number))
        {
            protocol = number == 0 ? null : number;
            return true;
        }
        if (!Protocols.TryGetValue(text, out number)) return false;
        protocol = number;
        return true;
    }

    public static string FormatProtocol(IpProtocol protocol) =>
        WrittenProtocols.TryGetValue(protocol.Number, out var name) ? name : protocol.Number.ToString(CultureInfo.InvariantCulture);

    /// <summary>An ICMP type by name, with the code when the name says one (port-unreachable is 3/3).</summary>
    public readonly record struct IcmpName(byte Type, byte? Code);

    private static readonly Dictionary<string, IcmpName> Icmp = new(StringComparer.OrdinalIgnoreCase)
    {
        ["echo-reply"] = new(0, null), ["pong"] = new(0, null),
        ["destination-unreachable"] = new(3, null), ["network-unreachable"] = new(3, 0), ["host-unreachable"] = new(3, 1),
        ["protocol-unreachable"] = new(3, 2), ["port-unreachable"] = new(3, 3), ["fragmentation-needed"] = new(3, 4),
        ["source-route-failed"] = new(3, 5), ["network-unknown"] = new(3, 6), ["host-unknown"] = new(3, 7),
        ["network-prohibited"] = new(3, 9), ["host-prohibited"] = new(3, 10), ["TOS-network-unreachable"] = new(3, 11),
        ["TOS-host-unreachable"] = new(3, 12), ["communication-prohibited"] = new(3, 13),
        ["host-precedence-violation"] = new(3, 14), ["precedence-cutoff"] = new(3, 15),
        ["source-quench"] = new(4, null),
        ["redirect"] = new(5, null), ["network-redirect"] = new(5, 0), ["host-redirect"] = new(5, 1),
        ["TOS-network-redirect"] = new(5, 2), ["TOS-host-redirect"] = new(5, 3),
        ["echo-request"] = new(8, null), ["ping"] = new(8, null),
        ["router-advertisement"] = new(9, null), ["router-solicitation"] = new(10, null),
        ["time-exceeded"] = new(11, null), ["ttl-exceeded"] = new(11, null), ["ttl-zero-during-transit"] = new(11, 0),
        ["ttl-zero-during-reassembly"] = new(11, 1),
        ["parameter-problem"] = new(12, null), ["ip-header-bad"] = new(12, 0), ["required-option-missing"] = new(12, 1),
        ["timestamp-request"] = new(13, null), ["timestamp-reply"] = new(14, null),
        ["address-mask-request"] = new(17, null), ["address-mask-reply"] = new(18, null),
    };

    private static readonly Dictionary<string, IcmpName> Icmpv6 = new(StringComparer.OrdinalIgnoreCase)
    {
        ["destination-unreachable"] = new(1, null), ["no-route"] = new(1, 0), ["communication-prohibited"] = new(1, 1),
        ["beyond-scope"] = new(1, 2), ["address-unreachable"] = new(1, 3), ["port-unreachable"] = new(1, 4),
        ["failed-policy"] = new(1, 5), ["reject-route"] = new(1, 6),
        ["packet-too-big"] = new(2, null),
        ["time-exceeded"] = new(3, null), ["ttl-exceeded"] = new(3, null), ["ttl-zero-during-transit"] = new(3, 0),
        ["ttl-zero-during-reassembly"] = new(3, 1),
        ["parameter-problem"] = new(4, null), ["bad-header"] = new(4, 0), ["unknown-header-type"] = new(4, 1),
        ["unknown-option"] = new(4, 2),
        ["echo-request"] = new(128, null), ["ping"] = new(128, null), ["echo-reply"] = new(129, null), ["pong"] = new(129, null),
        ["router-solicitation"] = new(133, null), ["router-advertisement"] = new(134, null),
        ["neighbour-solicitation"] = new(135, null), ["neighbor-solicitation"] = new(135, null),
        ["neighbour-advertisement"] = new(136, null), ["neighbor-advertisement"] = new(136, null),
        ["redirect"] = new(137, null),
    };

    /// <summary>Aliases iptables reads but never prints: each (type, code) prints by its other name.</summary>
    private static readonly HashSet<string> IcmpAliases = new(StringComparer.Ordinal)
    {
        "pong", "ping", "ttl-exceeded", "neighbor-solicitation", "neighbor-advertisement",
    };

    private static readonly Dictionary<IcmpName, string> IcmpPrinted = Icmp.Where(n => !IcmpAliases.Contains(n.Key)).ToDictionary(n => n.Value, n => n.Key);

    private static readonly Dictionary<IcmpName, string> Icmpv6Printed = Icmpv6.Where(n => !IcmpAliases.Contains(n.Key)).ToDictionary(n => n.Value, n => n.Key);

    /// <summary>The name iptables -L prints for an ICMP type (and code); null when it prints the numbers.</summary>
    public static string? FormatIcmp(byte type, byte? code, IpFamily family) =>
        (family == IpFamily.Ipv4 ? IcmpPrinted : Icmpv6Printed).GetValueOrDefault(new IcmpName(type, code));

    /// <summary>"8", "3/4" or a name of <paramref name="family"/>'s table; false when it is none of them.</summary>
    public static bool TryParseIcmp(string text, IpFamily family, out IcmpName icmp)
    {
        if ((family == IpFamily.Ipv4 ? Icmp : Icmpv6).TryGetValue(text, out icmp)) return true;
        var slash = text.IndexOf('/');
        var typeText = slash < 0 ? text : text[..slash];
        byte code = 0;
        if (byte.TryParse(typeText, NumberStyles.None, CultureInfo.InvariantCulture, out var type)
            && (slash < 0 || byte.TryParse(text[(slash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out code)))
        {
            icmp = new IcmpName(type, slash < 0 ? null : code);
            return true;
        }
        return false;
    }

    // Each reply's first name is the one iptables-save prints; the others are the aliases iptables accepts.
    private static readonly (string Name, RejectWith With)[] RejectV4 =
    [
        ("icmp-net-unreachable", RejectWith.NetUnreachable), ("net-unreach", RejectWith.NetUnreachable),
        ("icmp-host-unreachable", RejectWith.HostUnreachable), ("host-unreach", RejectWith.HostUnreachable),
        ("icmp-proto-unreachable", RejectWith.ProtocolUnreachable), ("proto-unreach", RejectWith.ProtocolUnreachable),
        ("icmp-port-unreachable", RejectWith.PortUnreachable), ("port-unreach", RejectWith.PortUnreachable),
        ("icmp-net-prohibited", RejectWith.NetProhibited), ("net-prohib", RejectWith.NetProhibited),
        ("icmp-host-prohibited", RejectWith.HostProhibited), ("host-prohib", RejectWith.HostProhibited),
        ("icmp-admin-prohibited", RejectWith.AdministrativelyProhibited), ("admin-prohib", RejectWith.AdministrativelyProhibited),
        ("tcp-reset", RejectWith.TcpReset), ("tcp-rst", RejectWith.TcpReset),
    ];

    private static readonly (string Name, RejectWith With)[] RejectV6 =
    [
        ("icmp6-no-route", RejectWith.NetUnreachable), ("no-route", RejectWith.NetUnreachable),
        ("icmp6-adm-prohibited", RejectWith.AdministrativelyProhibited), ("adm-prohibited", RejectWith.AdministrativelyProhibited),
        ("icmp6-addr-unreachable", RejectWith.HostUnreachable), ("addr-unreach", RejectWith.HostUnreachable),
        ("icmp6-port-unreachable", RejectWith.PortUnreachable), ("port-unreach", RejectWith.PortUnreachable),
        ("tcp-reset", RejectWith.TcpReset), ("tcp-rst", RejectWith.TcpReset),
    ];

    public static bool TryParseReject(string text, IpFamily family, out RejectWith with)
    {
        var match = (family == IpFamily.Ipv4 ? RejectV4 : RejectV6).FirstOrDefault(r => r.Name == text);
        with = match.With;
        return match.Name is not null;
    }

    /// <summary>The reply's name as iptables-save prints it; null when the family has no such reply.</summary>
    public static string? FormatReject(RejectWith with, IpFamily family) =>
        (family == IpFamily.Ipv4 ? RejectV4 : RejectV6).FirstOrDefault(r => r.With == with).Name;

    /// <summary>The names iptables-save prints, for messages.</summary>
    public static IEnumerable<string> RejectNames(IpFamily family) =>
        (family == IpFamily.Ipv4 ? RejectV4 : RejectV6).Where((_, i) => i % 2 == 0).Select(r => r.Name);

    /// <summary>The TCP flags iptables knows; its ALL is these six, not ECE and CWR.</summary>
    private static readonly (string Name, TcpFlags Flag)[] Flags =
    [
        ("FIN", TcpFlags.Fin), ("SYN", TcpFlags.Syn), ("RST", TcpFlags.Rst), ("PSH", TcpFlags.Psh), ("ACK", TcpFlags.Ack), ("URG", TcpFlags.Urg),
    ];

    public const TcpFlags AllFlags = TcpFlags.Fin | TcpFlags.Syn | TcpFlags.Rst | TcpFlags.Psh | TcpFlags.Ack | TcpFlags.Urg;

    /// <summary>"SYN,ACK", "ALL" or "NONE" (names in any case); null names the part that is not a flag.</summary>
    public static TcpFlags? ParseTcpFlags(string text, out string? bad)
    {
        var flags = TcpFlags.None;
        bad = null;
        foreach (var part in text.Split(','))
        {
            if (part.Equals("ALL", StringComparison.OrdinalIgnoreCase)) flags |= AllFlags;
            else if (part.Equals("NONE", StringComparison.OrdinalIgnoreCase)) { }
            else if (Flags.FirstOrDefault(f => f.Name.Equals(part, StringComparison.OrdinalIgnoreCase)) is { Name: not null } known) flags |= known.Flag;
            else
            {
                bad = part;
                return null;
            }
        }
        return flags;
    }

    public static string FormatTcpFlags(TcpFlags flags) =>
        flags == TcpFlags.None ? "NONE" : string.Join(',', Flags.Where(f => flags.HasFlag(f.Flag)).Select(f => f.Name));

    private static readonly Dictionary<string, byte> DscpClasses = new(StringComparer.OrdinalIgnoreCase)
    {
        ["CS0"] = 0, ["BE"] = 0, ["CS1"] = 8, ["CS2"] = 16, ["CS3"] = 24, ["CS4"] = 32, ["CS5"] = 40, ["CS6"] = 48, ["CS7"] = 56,
        ["AF11"] = 10, ["AF12"] = 12, ["AF13"] = 14, ["AF21"] = 18, ["AF22"] = 20, ["AF23"] = 22,
        ["AF31"] = 26, ["AF32"] = 28, ["AF33"] = 30, ["AF41"] = 34, ["AF42"] = 36, ["AF43"] = 38, ["EF"] = 46,
    };

    public static bool TryParseDscpClass(string text, out byte dscp) => DscpClasses.TryGetValue(text, out dscp);

    /// <summary>iptables' rate: a count, then optionally "/" and a prefix of second, minute, hour or day ("5/sec", "3/h").</summary>
    public static bool TryParseRate(string text, out uint count, out RateUnit unit)
    {
        unit = RateUnit.Second;
        var slash = text.IndexOf('/');
        if (!uint.TryParse(slash < 0 ? text : text[..slash], NumberStyles.None, CultureInfo.InvariantCulture, out count) || count == 0) return false;
        if (slash < 0) return true;
        var unitText = text[(slash + 1)..];
        if (unitText.Length == 0) return false;
        foreach (var (name, u) in new[] { ("second", RateUnit.Second), ("minute", RateUnit.Minute), ("hour", RateUnit.Hour), ("day", RateUnit.Day) })
        {
            if (name.StartsWith(unitText, StringComparison.OrdinalIgnoreCase))
            {
                unit = u;
                return true;
            }
        }
        return false;
    }

    /// <summary>The unit as iptables-save prints it.</summary>
    public static string FormatRateUnit(RateUnit unit) => unit switch
    {
        RateUnit.Second => "sec",
        RateUnit.Minute => "min",
        RateUnit.Hour => "hour",
        _ => "day",
    };

    /// <summary>
    /// Target extensions of iptables that bpfilter does not run: naming them gives a clear error rather than a jump to
    /// a chain that does not exist.
    /// </summary>
    public static readonly HashSet<string> UnsupportedTargets = new(StringComparer.Ordinal)
    {
        "AUDIT", "CHECKSUM", "CLASSIFY", "CLUSTERIP", "CONNMARK", "CONNSECMARK", "CT", "DNAT", "DNPT", "DSCP", "ECN", "HL",
        "HMARK", "IDLETIMER", "LED", "MARK", "MASQUERADE", "NETMAP", "NFLOG", "NFQUEUE", "NOTRACK", "QUEUE", "RATEEST",
        "REDIRECT", "SECMARK", "SET", "SNAT", "SNPT", "SYNPROXY", "TCPMSS", "TCPOPTSTRIP", "TEE", "TOS", "TPROXY", "TRACE",
        "TTL", "ULOG",
    };

    /// <summary>The targets bpfilter runs; none of them can be a user chain's name.</summary>
    public static readonly HashSet<string> BuiltInTargets = new(StringComparer.Ordinal) { "ACCEPT", "DROP", "RETURN", "REJECT", "LOG" };
}
