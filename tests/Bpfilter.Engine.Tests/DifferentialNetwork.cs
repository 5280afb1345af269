using System.Diagnostics;
using System.Runtime.InteropServices;
using Bpfilter.Engine.Kernel;

namespace Bpfilter.Engine.Tests;

/// <summary>
/// One sender namespace (bpft-ID-tx) with two veth pairs, one to a receiver that filters with iptables
/// (bpft-ID-ipt) and one to a receiver that filters with Bpfilter (bpft-ID-bpf). Both receivers have the same MAC
/// and addresses (<see cref="LocalIpv4"/>, <see cref="LocalIpv6"/>), so one crafted frame means the same to both.
/// Nothing else talks: the sender has no addresses, no ARP and no IPv6; the receivers make no link-local address, do
/// no duplicate address detection and have no route back to anyone, so only the test's frames reach their INPUT hooks. Frames go out through one
/// AF_PACKET socket of the sender. Disposing deletes the namespaces, and with them the veths.
/// </summary>
public sealed partial class DifferentialNetwork : IDisposable
{
    public static readonly string[] LocalIpv4 = ["10.201.0.2", "10.201.0.200", "10.77.0.1", "192.0.2.10", "198.51.100.1"];
    public static readonly string[] LocalIpv6 = ["2001:db8:1::2", "2001:db8:1::200", "2001:db8:77::1", "fd00:1::10"];

    private const string SenderMac = "02:00:00:00:00:01", ReceiverMac = "02:00:00:00:00:02"; // PacketBuilder's addresses
    private readonly int _socket = -1;
    private readonly int _toIptables, _toBpfilter;

    public DifferentialNetwork()
    {
        Id = Guid.NewGuid().ToString("N")[..6];
        Sender = $"bpft-{Id}-tx";
        Iptables = $"bpft-{Id}-ipt";
        Bpfilter = $"bpft-{Id}-bpf";
        try
        {
            foreach (var ns in new[] { Sender, Iptables, Bpfilter }) Sandbox.Ip("netns", "add", ns);
            Sandbox.Sysctl(Sender, "net.ipv6.conf.all.disable_ipv6", "1");
            Sandbox.Sysctl(Sender, "net.ipv6.conf.default.disable_ipv6", "1");
            foreach (var ns in new[] { Iptables, Bpfilter })
            {
                Sandbox.Sysctl(ns, "net.ipv6.conf.all.accept_dad", "0");
                Sandbox.Sysctl(ns, "net.ipv6.conf.default.accept_dad", "0");
                Sandbox.Sysctl(ns, "net.ipv6.conf.default.addr_gen_mode", "1"); // no link-local address, so no neighbour or MLD traffic
            }
            foreach (var (receiver, end) in new[] { (Iptables, "i"), (Bpfilter, "b") })
            {
                string near = $"bpft{Id}{end}0", far = $"bpft{Id}{end}1";
                Sandbox.Ip("link", "add", near, "netns", Sender, "address", SenderMac, "type", "veth", "peer", "name", far, "netns", receiver, "address", ReceiverMac);
                // Host addresses only: with no subnet on the link, a reply (echo reply, reset, port unreachable) finds no
                // route and is dropped at once; a reply to a neighbour that never answers would come back to the receiver's
                // own INPUT as "host unreachable" over lo.
                foreach (var address in LocalIpv4) Sandbox.Ip("-n", receiver, "addr", "add", address + "/32", "dev", far);
                foreach (var address in LocalIpv6) Sandbox.Ip("-n", receiver, "addr", "add", address + "/128", "dev", far, "nodad");
                Sandbox.Ip("-n", receiver, "link", "set", far, "up");
                Sandbox.Ip("-n", receiver, "link", "set", "lo", "up");
                Sandbox.Ip("-n", Sender, "link", "set", near, "arp", "off");
                Sandbox.Ip("-n", Sender, "link", "set", near, "up");
            }
            (_socket, _toIptables, _toBpfilter) = NetworkNamespace.Run(Sender, () =>
            {
                int fd = Socket(AfPacket, SockRaw | SockCloexec, EthPAllBigEndian);
                if (fd < 0) throw new InvalidOperationException($"socket(AF_PACKET) failed: errno {Marshal.GetLastPInvokeError()}");
                return (fd, (int)Interfaces.IndexOf($"bpft{Id}i0", Sender), (int)Interfaces.IndexOf($"bpft{Id}b0", Sender));
            });
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string Id { get; }
    public string Sender { get; }

    /// <summary>The receiver whose filter table's INPUT chain holds the iptables rules.</summary>
    public string Iptables { get; }

    /// <summary>The receiver where the ruleset is published at nf-input.</summary>
    public string Bpfilter { get; }

    /// <summary>Sends one Ethernet frame to the iptables receiver, then the same to the Bpfilter receiver.</summary>
    public void SendToBoth(byte[] frame)
    {
        Send(frame, _toIptables);
        Send(frame, _toBpfilter);
    }

    private unsafe void Send(byte[] frame, int ifindex)
    {
        var address = new SockaddrLl { Family = AfPacket, Protocol = EthPAllBigEndian, Ifindex = ifindex, AddressLength = 6 };
        fixed (byte* data = frame)
        {
            long sent = SendTo(_socket, data, (nuint)frame.Length, 0, &address, (uint)sizeof(SockaddrLl));
            if (sent != frame.Length) throw new InvalidOperationException($"sendto on AF_PACKET sent {sent} of {frame.Length} bytes: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    /// <summary>Runs a shell script inside namespace <paramref name="ns"/> (ip netns exec); returns its output, throws with its errors.</summary>
    public static string Run(string ns, string script)
    {
        var start = new ProcessStartInfo("ip") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[] { "netns", "exec", ns, "sh", "-c", script }) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"in {ns}: {script}\n{error.Result.Trim()}");
        return output;
    }

    public void Dispose()
    {
        if (_socket >= 0) Close(_socket);
        foreach (var ns in new[] { Sender, Iptables, Bpfilter })
        {
            if (ns is not null && File.Exists($"/run/netns/{ns}")) Sandbox.Ip("netns", "delete", ns);
        }
    }

    private const int AfPacket = 17, SockRaw = 3, SockCloexec = 0x80000;
    private const ushort EthPAllBigEndian = 0x0300; // htons(ETH_P_ALL)

    [StructLayout(LayoutKind.Sequential)]
    private unsafe struct SockaddrLl
    {
        public ushort Family;
        public ushort Protocol;
        public int Ifindex;
        public ushort HardwareType;
        public byte PacketType;
        public byte AddressLength;
        public fixed byte Address[8];
    }

    [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
    private static partial int Socket(int domain, int type, int protocol);

    [LibraryImport("libc", EntryPoint = "sendto", SetLastError = true)]
    private static unsafe partial long SendTo(int fd, byte* buffer, nuint length, int flags, SockaddrLl* address, uint addressLength);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
