using Bpfilter.Engine.Compiler;
using Bpfilter.Engine.Kernel;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Deployment;

/// <summary>One packet a log verdict wrote down.</summary>
public sealed record LogEntry(string Deployment, DateTimeOffset Time, string Chain, int Position, string Rule, string Prefix,
    IpFamily Family, IpProtocol Protocol, string Source, ushort? SourcePort, string Destination, ushort? DestinationPort,
    uint Length, TcpFlags? TcpFlags, uint InInterface, uint OutInterface);

/// <summary>
/// Reads the entries a deployment's log verdicts wrote into its ring buffer since the last read. Entries are read
/// once; a republish starts a new ring (what the old one still held is lost); at most
/// <see cref="LimitMaps.LogRate"/> entries a second are written, whatever the traffic.
/// </summary>
public static class DeploymentLog
{
    public static IReadOnlyList<LogEntry> Read(string deployment)
    {
        Privileges.Require(Privileges.ForReading, "Reading a deployment's log");
        var manifest = Deployments.ReadManifest(deployment);
        if (manifest.LogPin is null || manifest.Logs is null) return [];
        using var map = BpfMap.OpenPinned(DeploymentPaths.Pin(deployment, manifest.LogPin))
            ?? throw new BpfilterException("DeploymentIncomplete", FailureCategory.InvalidData,
                $"deployment '{deployment}' lists its log at {manifest.LogPin}, but nothing is pinned there");
        using var ring = new RingBufferReader(map, LogMaps.RingSize);
        return ring.Drain().Where(r => r.Length == LogMaps.EntrySize).Select(r => Entry(deployment, manifest.Logs, LogMaps.Decode(r))).ToList();
    }

    private static LogEntry Entry(string deployment, IReadOnlyList<LogSource> sources, LogRecord record)
    {
        var source = record.Id >= 0 && record.Id < sources.Count ? sources[record.Id] : new LogSource("?", 0, null, "");
        bool ports = record.HasTransport && record.Protocol.HasPorts;
        return new LogEntry(deployment, Deployments.BootTime.AddTicks((long)(record.BootTimeNs / 100)), source.Chain, source.Position,
            source.Rule ?? $"#{source.Position}", source.Prefix, record.Family, record.Protocol, record.Source.ToString(),
            ports ? record.SourcePort : null, record.Destination.ToString(), ports ? record.DestinationPort : null, record.Length,
            record.HasTransport && record.Protocol == IpProtocol.Tcp ? record.TcpFlags : null, record.InInterface, record.OutInterface);
    }
}
