using System.Globalization;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Formats.Iptables;

/// <summary>
/// The names iptables prints without -n, read from this host's files as the C library's lookups read them:
/// /etc/hosts, then /etc/networks, for IPv4 addresses; /etc/services for ports; /etc/protocols for protocols.
/// No DNS query is made (iptables would ask the resolver too, after the files): a listing never waits on the network.
/// </summary>
public sealed class IptablesNameLookup
{
    private readonly Dictionary<uint, string> _hosts = new();
    private readonly Dictionary<uint, string> _networks = new();
    private readonly Dictionary<(ushort, string), string> _services = new();
    private readonly Dictionary<(string, string), ushort> _ports = new();
    private readonly Dictionary<byte, string> _protocols = new();

    private IptablesNameLookup() { }

    /// <summary>This host's names, read once from /etc.</summary>
    public static IptablesNameLookup System => SystemNames.Value;

    private static readonly Lazy<IptablesNameLookup> SystemNames = new(() => FromDirectory("/etc"));

    /// <summary>No names at all: every number as a number.</summary>
    public static IptablesNameLookup None { get; } = new();

    /// <summary>The names of the hosts, networks, services and protocols files in <paramref name="directory"/> (missing files name nothing).</summary>
    public static IptablesNameLookup FromDirectory(string directory)
    {
        var lookup = new IptablesNameLookup();
        foreach (var fields in Lines(Path.Combine(directory, "hosts")))
        {
            if (fields.Length >= 2 && TryIpv4(fields[0], out var address)) lookup._hosts.TryAdd(address, fields[1]);
        }
        foreach (var fields in Lines(Path.Combine(directory, "networks")))
        {
            // Only a network written in four parts can equal an address (getnetbyaddr compares the numbers as written).
            if (fields.Length >= 2 && TryIpv4(fields[1], out var network)) lookup._networks.TryAdd(network, fields[0]);
        }
        foreach (var fields in Lines(Path.Combine(directory, "services")))
        {
            if (fields.Length < 2) continue;
            var slash = fields[1].IndexOf('/');
            if (slash < 0 || !ushort.TryParse(fields[1][..slash], NumberStyles.None, CultureInfo.InvariantCulture, out var port)) continue;
            var protocol = fields[1][(slash + 1)..];
            lookup._services.TryAdd((port, protocol), fields[0]);
            foreach (var name in fields.Where((_, i) => i != 1)) lookup._ports.TryAdd((name, protocol), port);
        }
        foreach (var fields in Lines(Path.Combine(directory, "protocols")))
        {
            if (fields.Length >= 2 && byte.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out var number)) lookup._protocols.TryAdd(number, fields[0]);
        }
        return lookup;
    }

    /// <summary>The name of an IPv4 address: a host's, else a network's; null when the files name neither.</summary>
    public string? Address(IpPrefix address)
    {
        if (address.Family != IpFamily.Ipv4) return null;
        var value = (uint)address.Address;
        return _hosts.TryGetValue(value, out var host) ? host : _networks.TryGetValue(value, out var network) ? network : null;
    }

    /// <summary>The service name of a TCP or UDP port; null when it has none.</summary>
    public string? Service(ushort port, byte protocol) =>
        ProtocolKey(protocol) is { } key && _services.TryGetValue((port, key), out var name) ? name : null;

    /// <summary>The port of a TCP or UDP service name (or alias); false when the services file has none.</summary>
    public bool TryParseService(string name, byte protocol, out ushort port)
    {
        port = 0;
        return ProtocolKey(protocol) is { } key && _ports.TryGetValue((name, key), out port);
    }

    /// <summary>A protocol's name; null when the protocols file has none.</summary>
    public string? Protocol(byte number) => _protocols.GetValueOrDefault(number);

    private static string? ProtocolKey(byte protocol) => protocol switch { 6 => "tcp", 17 => "udp", 132 => "sctp", 33 => "dccp", _ => null };

    private static IEnumerable<string[]> Lines(string path)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            yield break;
        }
        foreach (var line in lines)
        {
            var hash = line.IndexOf('#');
            var fields = (hash < 0 ? line : line[..hash]).Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length > 0) yield return fields;
        }
    }

    private static bool TryIpv4(string text, out uint address)
    {
        address = 0;
        var parts = text.Split('.');
        if (parts.Length != 4) return false;
        foreach (var part in parts)
        {
            if (!byte.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var b)) return false;
            address = address << 8 | b;
        }
        return true;
    }
}
