using System.Text.Json;

namespace Bpfilter.Bench;

/// <summary>
/// A generator namespace and a receiver namespace of the benchmark's own (bpft-ID-gen, bpft-ID-rcv) joined by a veth
/// pair, made fresh for each measurement (an iptables-legacy table keeps its hooks until its namespace goes, which
/// would tax later variants). The receiving end has GRO on: frames redirected into a veth need the peer's NAPI, which
/// GRO or a native XDP program provides. IPv6 is off in both, so no neighbour discovery mixes into the counts.
/// Disposing deletes both namespaces and with them the pair.
/// </summary>
internal sealed class Topology : IDisposable
{
    public const string GeneratorAddress = "10.202.0.1";
    public const string ReceiverAddress = "10.202.0.2";

    public Topology()
    {
        var id = Guid.NewGuid().ToString("N")[..6];
        Generator = $"bpft-{id}-gen";
        Receiver = $"bpft-{id}-rcv";
        GeneratorInterface = $"bpft{id}g";
        ReceiverInterface = $"bpft{id}r";
        try
        {
            Shell.Run("ip", "netns", "add", Generator);
            Shell.Run("ip", "netns", "add", Receiver);
            foreach (var ns in new[] { Generator, Receiver })
                Shell.InNamespace(ns, "sysctl", ["-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"]);
            Shell.Run("ip", "link", "add", GeneratorInterface, "netns", Generator, "type", "veth", "peer", "name", ReceiverInterface, "netns", Receiver);
            Shell.Run("ip", "-n", Generator, "addr", "add", $"{GeneratorAddress}/24", "dev", GeneratorInterface);
            Shell.Run("ip", "-n", Receiver, "addr", "add", $"{ReceiverAddress}/24", "dev", ReceiverInterface);
            Shell.Run("ip", "-n", Generator, "link", "set", GeneratorInterface, "up");
            Shell.Run("ip", "-n", Receiver, "link", "set", ReceiverInterface, "up");
            Shell.InNamespace(Receiver, "ethtool", ["-K", ReceiverInterface, "gro", "on"]);
            GeneratorMac = Mac(Generator, GeneratorInterface);
            ReceiverMac = Mac(Receiver, ReceiverInterface);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string Generator { get; }
    public string Receiver { get; }
    public string GeneratorInterface { get; }
    public string ReceiverInterface { get; }
    public byte[] GeneratorMac { get; } = [];
    public byte[] ReceiverMac { get; } = [];

    /// <summary>Frames the generator's end handed to the receiver's ring (redirected frames only).</summary>
    public ulong Delivered() => Shell.EthtoolStat(Generator, GeneratorInterface, "tx_queue_0_xdp_xmit");

    /// <summary>Datagrams the receiver's UDP found no socket for: where packets end when nothing filters them.</summary>
    public ulong UdpNoPorts()
    {
        var lines = Shell.InNamespace(Receiver, "cat", ["/proc/net/snmp"]).Split('\n').Where(l => l.StartsWith("Udp:")).ToArray();
        var names = lines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var values = lines[1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return ulong.Parse(values[Array.IndexOf(names, "NoPorts")]);
    }

    private static byte[] Mac(string ns, string device)
    {
        using var json = JsonDocument.Parse(Shell.Run("ip", "-n", ns, "-j", "link", "show", device));
        return json.RootElement[0].GetProperty("address").GetString()!.Split(':').Select(h => Convert.ToByte(h, 16)).ToArray();
    }

    public void Dispose()
    {
        Shell.TryRun("ip", ["netns", "delete", Generator]);
        Shell.TryRun("ip", ["netns", "delete", Receiver]);
    }
}
