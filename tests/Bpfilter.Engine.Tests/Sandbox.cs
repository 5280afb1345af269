using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Bpfilter.Engine.Kernel;

namespace Bpfilter.Engine.Tests;

/// <summary>
/// Two network namespaces of the test's own (bpft-ID-tx, bpft-ID-rx) joined by a veth pair (bpftID0 in tx,
/// bpftID1 in rx), addressed 10.201.0.1 and 10.201.0.2. Disposing deletes both namespaces and with them the pair.
/// </summary>
public sealed class Sandbox : IDisposable
{
    public Sandbox()
    {
        Id = Guid.NewGuid().ToString("N")[..6];
        Sender = $"bpft-{Id}-tx";
        Receiver = $"bpft-{Id}-rx";
        SenderInterface = $"bpft{Id}0";
        ReceiverInterface = $"bpft{Id}1";
        try
        {
            Ip("netns", "add", Sender);
            Ip("netns", "add", Receiver);
            Ip("link", "add", SenderInterface, "netns", Sender, "type", "veth", "peer", "name", ReceiverInterface, "netns", Receiver);
            Ip("-n", Sender, "addr", "add", $"{SenderAddress}/24", "dev", SenderInterface);
            Ip("-n", Receiver, "addr", "add", $"{ReceiverAddress}/24", "dev", ReceiverInterface);
            foreach (var (ns, dev) in new[] { (Sender, SenderInterface), (Receiver, ReceiverInterface) })
            {
                Ip("-n", ns, "link", "set", dev, "up");
                Ip("-n", ns, "link", "set", "lo", "up");
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public const string SenderAddress = "10.201.0.1";
    public const string ReceiverAddress = "10.201.0.2";

    public string Id { get; }
    public string Sender { get; }
    public string Receiver { get; }
    public string SenderInterface { get; }
    public string ReceiverInterface { get; }

    /// <summary>Adds a further address to the sender's interface, to send from.</summary>
    public void AddSenderAddress(string address) => Ip("-n", Sender, "addr", "add", $"{address}/24", "dev", SenderInterface);

    /// <summary>A UDP socket bound in the receiver namespace.</summary>
    public Socket BindUdp(int port) => NetworkNamespace.Run(Receiver, () =>
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveTimeout = 200 };
        socket.Bind(new IPEndPoint(IPAddress.Any, port));
        return socket;
    });

    /// <summary>
    /// Sends <paramref name="count"/> datagrams from the sender namespace (or <paramref name="from"/>'s socket
    /// made by <see cref="UdpSocketIn"/>); returns how many sends the kernel refused (EPERM from a local-out drop).
    /// </summary>
    public int SendUdp(int port, int count, string from = SenderAddress, string to = ReceiverAddress, int payload = 18, Socket? socket = null)
    {
        using var own = socket is null ? UdpSocketIn(Sender, from) : null;
        var sender = socket ?? own!;
        var data = new byte[payload];
        int refused = 0;
        for (int i = 0; i < count; i++)
        {
            try
            {
                sender.SendTo(data, new IPEndPoint(IPAddress.Parse(to), port));
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AccessDenied)
            {
                refused++;
            }
        }
        return refused;
    }

    /// <summary>A UDP socket of network namespace <paramref name="ns"/>, bound to <paramref name="address"/>.</summary>
    public static Socket UdpSocketIn(string ns, string address, int port = 0) => NetworkNamespace.Run(ns, () =>
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveTimeout = 200 };
        socket.Bind(new IPEndPoint(IPAddress.Parse(address), port));
        return socket;
    });

    /// <summary>Datagrams waiting on <paramref name="socket"/>, read until 200 ms pass without one.</summary>
    public static int Drain(Socket socket)
    {
        int received = 0;
        var buffer = new byte[2048];
        while (true)
        {
            try
            {
                socket.Receive(buffer);
                received++;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock)
            {
                return received;
            }
        }
    }

    /// <summary>Tries a TCP connection from the sender; true when the receiver answered at all (accept or reset).</summary>
    public bool TcpAnswers(int port, TimeSpan wait) => NetworkNamespace.Run(Sender, () =>
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            return socket.ConnectAsync(new IPEndPoint(IPAddress.Parse(ReceiverAddress), port)).Wait(wait);
        }
        catch (AggregateException e) when (e.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionRefused })
        {
            return true;
        }
    });

    public void Dispose()
    {
        foreach (var ns in new[] { Sender, Receiver })
        {
            if (File.Exists($"/run/netns/{ns}")) Ip("netns", "delete", ns);
        }
    }

    /// <summary>Sets a sysctl inside a namespace of the sandbox (through /proc/sys, from a thread in that namespace).</summary>
    public static void Sysctl(string ns, string key, string value) =>
        NetworkNamespace.Run(ns, () => File.WriteAllText("/proc/sys/" + key.Replace('.', '/'), value));

    public static void Ip(params string[] args)
    {
        var start = new ProcessStartInfo("ip") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"ip {string.Join(' ', args)}: {error.Trim()}");
    }
}
