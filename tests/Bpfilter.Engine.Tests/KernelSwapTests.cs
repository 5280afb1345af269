using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Bpfilter.Engine.Deployment;
using Bpfilter.Engine.Rules;
using Xunit;
using Xunit.Abstractions;

namespace Bpfilter.Engine.Tests;

/// <summary>
/// Atomic replacement under load: while a sender streams two flows, 100 republishes alternate two rulesets that
/// both drop flow A and pass flow B. Not one packet of A may arrive, and not one packet of B may be lost.
/// </summary>
[Collection("kernel")]
public sealed class KernelSwapTests(ITestOutputHelper output)
{
    private const int DroppedPort = 9999, PassedPort = 8888, Republishes = 100;

    [Theory]
    [InlineData(Hook.Xdp)]
    [InlineData(Hook.TcIngress)]
    [InlineData(Hook.NfInput)]
    public void Republishing_under_traffic_never_lets_the_dropped_flow_through_nor_loses_the_passed_one(Hook hook)
    {
        using var sandbox = new Sandbox();
        var name = $"bpft-s{sandbox.Id}";
        try
        {
            Ruleset Version(int v) => new(name, [new Chain("INPUT", hook, hook.IsNetfilter() ? null : sandbox.ReceiverInterface, Verdict.Accept,
            [
                new Rule($"unrelated-{v}", Matches.Simple(protocol: IpProtocol.Udp, destinationPort: (ushort)(1000 + v)), Verdict.Drop),
                new Rule("drop-a", Matches.Simple(protocol: IpProtocol.Udp, destinationPort: DroppedPort), Verdict.Drop),
            ])]);
            Publisher.Publish(Version(0), new PublishOptions(sandbox.Receiver));

            using var flowA = Receiver(sandbox, DroppedPort);
            using var flowB = Receiver(sandbox, PassedPort);
            int receivedA = 0, receivedB = 0, sentA = 0, sentB = 0;
            using var stop = new CancellationTokenSource();
            var readers = new[] { Start(() => receivedA = Count(flowA, stop.Token)), Start(() => receivedB = Count(flowB, stop.Token)) };
            var sending = new ManualResetEventSlim();
            var sender = Start(() =>
            {
                using var socket = Sandbox.UdpSocketIn(sandbox.Sender, Sandbox.SenderAddress);
                var a = new IPEndPoint(IPAddress.Parse(Sandbox.ReceiverAddress), DroppedPort);
                var b = new IPEndPoint(IPAddress.Parse(Sandbox.ReceiverAddress), PassedPort);
                var payload = new byte[18];
                sending.Set();
                while (!stop.IsCancellationRequested)
                {
                    for (int i = 0; i < 16; i++)
                    {
                        socket.SendTo(payload, a); sentA++;
                        socket.SendTo(payload, b); sentB++;
                    }
                    Thread.Sleep(1);
                }
            });
            sending.Wait();
            var clock = Stopwatch.StartNew();
            for (int i = 1; i <= Republishes; i++) Publisher.Publish(Version(i % 2), new PublishOptions(sandbox.Receiver));
            var elapsed = clock.Elapsed;
            stop.CancelAfter(TimeSpan.FromMilliseconds(300)); // let the last packets in flight arrive
            sender.Join();
            foreach (var reader in readers) reader.Join();

            output.WriteLine($"{hook.ToName()}: {Republishes} republishes in {elapsed.TotalSeconds:0.00} s; flow A sent {sentA}, received {receivedA}; flow B sent {sentB}, received {receivedB}");
            Assert.True(sentA > 1000, $"only {sentA} packets were sent during the republishes");
            Assert.Equal(0, receivedA);
            Assert.Equal(sentB, receivedB);
            Assert.Equal(Republishes + 1, Deployments.Get(name).Generation);
        }
        finally
        {
            if (Deployments.Names().Contains(name)) Deployments.Unpublish(name);
        }
    }

    /// <summary>Senders and readers block on sockets: each gets a thread of its own.</summary>
    private static Thread Start(Action work)
    {
        var thread = new Thread(() => work()) { IsBackground = true };
        thread.Start();
        return thread;
    }

    private static Socket Receiver(Sandbox sandbox, int port)
    {
        var socket = sandbox.BindUdp(port);
        socket.ReceiveBufferSize = 8 << 20;
        return socket;
    }

    /// <summary>Counts datagrams until cancelled and then quiet for the socket's receive timeout.</summary>
    private static int Count(Socket socket, CancellationToken stop)
    {
        int count = 0;
        var buffer = new byte[2048];
        while (true)
        {
            try
            {
                socket.Receive(buffer);
                count++;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock)
            {
                if (stop.IsCancellationRequested) return count;
            }
        }
    }
}
