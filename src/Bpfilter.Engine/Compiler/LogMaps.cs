using System.Buffers.Binary;
using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Compiler;

/// <summary>One log verdict of a ruleset: which rule it is, and its prefix. Its place in the list is its id in entries.</summary>
public sealed record LogSource(string Chain, int Position, string? Rule, string Prefix);

/// <summary>
/// A ruleset's log: one BPF ring buffer that every program of the deployment writes to, and the 64-byte entry its log
/// verdicts write: {u64 boot-time ns; u32 log id; u8 family, protocol, TCP flags, has-transport; source and destination
/// address (16 bytes each, network order; IPv4 in the first 4); u16 source port, destination port; u32 length;
/// u32 in-ifindex; u32 out-ifindex}.
/// </summary>
public static class LogMaps
{
    public const int EntrySize = 64;

    /// <summary>The ring's size in bytes: a power of two and a multiple of the page size.</summary>
    public const uint RingSize = 256 * 1024;

    private const MapType RingBuffer = (MapType)27;

    public static MapSpec? SpecOf(Ruleset ruleset) =>
        Entries(ruleset).Count == 0 ? null : new MapSpec(ChainCompiler.KernelName("log_", ruleset.Name), RingBuffer, 0, 0, RingSize);

    /// <summary>The log verdicts of the ruleset, hooked chains first, in rule order: an entry's id indexes this list.</summary>
    public static IReadOnlyList<LogSource> Entries(Ruleset ruleset) =>
        ruleset.Chains.Select(c => (c.Name, (IReadOnlyList<Rule>)c.Rules))
            .Concat(ruleset.UserChains.Select(c => (c.Name, (IReadOnlyList<Rule>)c.Rules)))
            .SelectMany(c => c.Item2.Select((rule, i) => (Chain: c.Name, Position: i + 1, Rule: rule)))
            .Where(x => x.Rule.Verdict.Kind == VerdictKind.Log)
            .Select(x => new LogSource(x.Chain, x.Position, x.Rule.Name, x.Rule.Verdict.LogPrefix ?? ""))
            .ToList();

    public static int IdOf(Ruleset ruleset, string chain, int index) =>
        Entries(ruleset).Select((e, id) => (e, id)).First(x => x.e.Chain == chain && x.e.Position == index + 1).id;

    /// <summary>Reads one entry as the programs write it.</summary>
    public static LogRecord Decode(ReadOnlySpan<byte> entry)
    {
        var family = entry[12];
        int addressLength = family == 6 ? 16 : 4;
        return new LogRecord(
            BinaryPrimitives.ReadUInt64LittleEndian(entry),
            (int)BinaryPrimitives.ReadUInt32LittleEndian(entry[8..]),
            family == 6 ? IpFamily.Ipv6 : IpFamily.Ipv4,
            new IpProtocol(entry[13]),
            (TcpFlags)entry[14],
            entry[15] != 0,
            new IpPrefix(family == 6 ? IpFamily.Ipv6 : IpFamily.Ipv4, IpPrefix.ToInteger(entry.Slice(16, addressLength)), addressLength * 8),
            new IpPrefix(family == 6 ? IpFamily.Ipv6 : IpFamily.Ipv4, IpPrefix.ToInteger(entry.Slice(32, addressLength)), addressLength * 8),
            BinaryPrimitives.ReadUInt16LittleEndian(entry[48..]),
            BinaryPrimitives.ReadUInt16LittleEndian(entry[50..]),
            BinaryPrimitives.ReadUInt32LittleEndian(entry[52..]),
            BinaryPrimitives.ReadUInt32LittleEndian(entry[56..]),
            BinaryPrimitives.ReadUInt32LittleEndian(entry[60..]));
    }
}

/// <summary>One entry of a ring buffer as written, before its id is looked up.</summary>
public sealed record LogRecord(ulong BootTimeNs, int Id, IpFamily Family, IpProtocol Protocol, TcpFlags TcpFlags, bool HasTransport,
    IpPrefix Source, IpPrefix Destination, ushort SourcePort, ushort DestinationPort, uint Length, uint InInterface, uint OutInterface);
