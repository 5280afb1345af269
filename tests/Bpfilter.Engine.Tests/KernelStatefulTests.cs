using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Bpfilter.Engine.Deployment;
using Bpfilter.Engine.Kernel;
using Bpfilter.Engine.Rules;
using Bpfilter.Engine.Simulation;
using Xunit;
using Xunit.Abstractions;

namespace Bpfilter.Engine.Tests;

/// <summary>
/// Stateful filtering with real TCP and UDP conversations. The receiver namespace (10.201.0.2) is the protected
/// server: "established,related accept; new tcp to port 22 accept; policy drop". Its own client connections out get
/// their replies, the outside reaches port 22 and not port 80, unsolicited packets that pretend to be replies are
/// dropped, and ICMP errors about its own flows come in as related.
/// </summary>
[Collection("kernel")]
public sealed class KernelStatefulTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _deployment = $"bpft-ct{Guid.NewGuid().ToString("N")[..6]}";

    public void Dispose()
    {
        if (Deployments.Names().Contains(_deployment)) Deployments.Unpublish(_deployment);
    }

    private static readonly Rule[] ServerRules =
    [
        new("established", new Match { CtState = new CtStateMatch(CtStates.Established | CtStates.Related) }, Verdict.Accept),
        new("ssh", new Match { CtState = new CtStateMatch(CtStates.New), Protocol = new ProtocolMatch(IpProtocol.Tcp), DestinationPort = PortMatch.Single(22) }, Verdict.Accept),
    ];

    private static Sandbox NewSandbox()
    {
        var sandbox = new Sandbox();
        // No IPv6: its neighbour discovery would reach the policy too and blur what the counters show.
        foreach (var ns in new[] { sandbox.Sender, sandbox.Receiver }) Sandbox.Sysctl(ns, "net.ipv6.conf.all.disable_ipv6", "1");
        return sandbox;
    }

    private Chain ServerChain(Hook hook, Sandbox sandbox) =>
        new("INPUT", hook, hook.Target() == HookTarget.Interface ? sandbox.ReceiverInterface : null, Verdict.Drop, ServerRules);

    private (ulong Established, ulong Ssh, ulong Policy) Counts()
    {
        var counters = Deployments.Counters(_deployment).Where(c => c.Chain == "INPUT").ToList();
        return (counters.Single(c => c.Rule == "established").Packets, counters.Single(c => c.Rule == "ssh").Packets,
            counters.Single(c => c.Kind == CounterKind.Policy).Packets);
    }

    [Theory]
    [InlineData(Hook.NfInput)]
    [InlineData(Hook.TcIngress)]
    [InlineData(Hook.Xdp)]
    public void A_protected_server_talks_out_and_lets_in_only_port_22(Hook hook)
    {
        using var sandbox = NewSandbox();
        var clock = Stopwatch.StartNew();
        Publisher.Publish(new Ruleset(_deployment, [ServerChain(hook, sandbox)]), new PublishOptions(sandbox.Receiver));
        Assert.True(NetworkNamespace.Run(sandbox.Receiver, () => NfTables.TableExists(DeploymentConntrack.TableName(_deployment))));

        var script = new ServerScript(sandbox);
        var outcome = script.Run(Counts);
        Assert.Equal((5, 5), (outcome.TcpOut, outcome.UdpOut));
        Assert.Equal((5, -1), (outcome.SshIn, outcome.WebIn));
        var (established, ssh, policy) = outcome.AfterConversations;
        Assert.True(ssh >= 1, $"the SYN to port 22 was counted as new: {outcome.AfterConversations}");
        Assert.True(established >= 20, $"replies and the rest of each conversation were established: {outcome.AfterConversations}");
        Assert.True(policy >= 1, $"the SYN to port 80 met the policy: {outcome.AfterConversations}");
        Assert.Equal(0, outcome.UnsolicitedReceived);
        Assert.Equal((established, ssh, policy + (ulong)ServerScript.Unsolicited), outcome.AfterUnsolicited);
        Assert.True(outcome.ErrorRefused, "the port unreachable for the protected host's own datagram came in");
        Assert.Equal(outcome.AfterUnsolicited.Established + 1, outcome.AfterError.Established);
        Assert.Equal(outcome.AfterUnsolicited.Policy, outcome.AfterError.Policy);

        output.WriteLine($"{hook.ToName()}: tcp out {outcome.TcpOut} round trips, udp out {outcome.UdpOut}, ssh in {outcome.SshIn}, web in refused; "
            + $"{ServerScript.Unsolicited} unsolicited dropped; related ICMP error passed; counters established {outcome.AfterError.Established}, "
            + $"ssh {outcome.AfterError.Ssh}, policy {outcome.AfterError.Policy}; {clock.ElapsedMilliseconds} ms");
    }

    /// <summary>
    /// The differential: iptables' conntrack match in the mangle table's INPUT (priority −150, where ACCEPT only ends
    /// the table, so nothing is dropped) mirrors a Bpfilter nf-input chain (priority 0) rule for rule, so both see the
    /// very same packets with the very same conntrack entries. Over real handshakes, replies, unsolicited packets and
    /// ICMP errors, every rule's packets and bytes, and the policy's, must be equal.
    /// </summary>
    [Fact]
    public void Per_rule_counters_equal_iptables_over_real_conversations()
    {
        using var sandbox = NewSandbox();
        var rules = new (Rule Rule, string Iptables)[]
        {
            (new("invalid", new Match { CtState = new CtStateMatch(CtStates.Invalid) }, Verdict.Drop), "-m conntrack --ctstate INVALID"),
            (new("udp-not-new", new Match { CtState = new CtStateMatch(CtStates.New, negated: true), Protocol = new ProtocolMatch(IpProtocol.Udp) }, Verdict.Accept),
                "-p udp -m conntrack ! --ctstate NEW"),
            (new("replies", new Match { CtState = new CtStateMatch(CtStates.Established), CtDirection = CtDirection.Reply }, Verdict.Accept),
                "-m conntrack --ctstate ESTABLISHED --ctdir REPLY"),
            (new("established", new Match { CtState = new CtStateMatch(CtStates.Established | CtStates.Related) }, Verdict.Accept),
                "-m conntrack --ctstate ESTABLISHED,RELATED"),
            (new("ssh", new Match { CtState = new CtStateMatch(CtStates.New), Protocol = new ProtocolMatch(IpProtocol.Tcp), DestinationPort = PortMatch.Single(22) }, Verdict.Accept),
                "-p tcp --dport 22 -m conntrack --ctstate NEW"),
            (new("tcp-original", new Match { CtDirection = CtDirection.Original, Protocol = new ProtocolMatch(IpProtocol.Tcp) }, Verdict.Drop),
                "-p tcp -m conntrack --ctdir ORIGINAL"),
        };
        Iptables(sandbox.Receiver, "-t", "mangle", "-P", "INPUT", "ACCEPT");
        foreach (var (_, match) in rules) Iptables(sandbox.Receiver, ["-t", "mangle", "-A", "INPUT", .. match.Split(' '), "-j", "ACCEPT"]);
        Publisher.Publish(new Ruleset(_deployment, [new Chain("INPUT", Hook.NfInput, null, Verdict.Drop, rules.Select(r => r.Rule).ToList())]),
            new PublishOptions(sandbox.Receiver));

        var script = new ServerScript(sandbox);
        int conversations = 0;
        for (int round = 0; round < 4; round++) conversations += script.Run(null).Conversations;

        var ours = Deployments.Counters(_deployment).Where(c => c.Chain == "INPUT" && c.Kind is CounterKind.Rule or CounterKind.Policy)
            .Select(c => (c.Packets, c.Bytes)).ToList();
        var theirs = MangleInputCounters(sandbox.Receiver);
        var mismatches = ours.Zip(theirs).Count(p => p.First != p.Second);
        output.WriteLine($"nf-input vs iptables: {conversations} conversations, {ours.Sum(c => (long)c.Packets)} packets, {mismatches} mismatches");
        for (int i = 0; i < ours.Count; i++)
            output.WriteLine($"  {(i < rules.Length ? rules[i].Rule.Name : "(policy)"),-14} bpfilter {ours[i].Packets,4} packets {ours[i].Bytes,6} bytes, iptables {theirs[i].Packets,4} packets {theirs[i].Bytes,6} bytes");
        Assert.Equal(rules.Length + 1, theirs.Count);
        Assert.Equal(theirs, ours);
        Assert.All(ours, c => Assert.True(c.Packets > 0)); // every rule, and the policy, saw traffic
    }

    [Fact]
    public void Tc_egress_sees_the_state_the_kernel_attached_to_the_host_own_packets()
    {
        using var sandbox = NewSandbox();
        var rules = new Rule[]
        {
            new("new", new Match { CtState = new CtStateMatch(CtStates.New), CtDirection = CtDirection.Original }, Verdict.Accept),
            new("established-out", new Match { CtState = new CtStateMatch(CtStates.Established), CtDirection = CtDirection.Original }, Verdict.Accept),
            new("reply", new Match { CtDirection = CtDirection.Reply }, Verdict.Accept),
            new("untracked-or-invalid", new Match { CtState = new CtStateMatch(CtStates.Invalid | CtStates.Untracked) }, Verdict.Accept),
        };
        Publisher.Publish(new Ruleset(_deployment, [new Chain("OUT", Hook.TcEgress, sandbox.ReceiverInterface, Verdict.Accept, rules)]),
            new PublishOptions(sandbox.Receiver));
        using var outsideTcp = Conversation.TcpEchoServer(sandbox.Sender, Sandbox.SenderAddress, 8080);
        using var outsideUdp = Conversation.UdpEchoServer(sandbox.Sender, Sandbox.SenderAddress, 5353);
        using var ssh = Conversation.TcpEchoServer(sandbox.Receiver, Sandbox.ReceiverAddress, 22);

        Assert.Equal(3, Conversation.TcpEcho(sandbox.Receiver, Sandbox.SenderAddress, 8080, rounds: 3));
        Assert.Equal(3, Conversation.UdpEcho(sandbox.Receiver, Sandbox.ReceiverAddress, Sandbox.SenderAddress, 5353, rounds: 3));
        var afterOut = ByRule();
        // Out: the SYN and the first datagram are new; everything after is established, none of it a reply.
        Assert.Equal(2UL, afterOut["new"]);
        Assert.True(afterOut["established-out"] >= 6, $"{string.Join(", ", afterOut)}");
        Assert.Equal(0UL, afterOut["reply"]);

        Assert.Equal(3, Conversation.TcpEcho(sandbox.Sender, Sandbox.ReceiverAddress, 22, rounds: 3));
        var afterIn = ByRule();
        // In: what the server sends back (SYN-ACK, echoes, its FIN) is all reply; nothing new goes out.
        Assert.Equal(afterOut["new"], afterIn["new"]);
        Assert.True(afterIn["reply"] >= 4, $"{string.Join(", ", afterIn)}");
        Assert.Equal(0UL, afterIn["untracked-or-invalid"]);
        output.WriteLine($"tc-egress: {string.Join(", ", afterIn.Select(kv => $"{kv.Key} {kv.Value}"))}");
    }

    [Fact]
    public void Conntrack_table_lives_as_long_as_a_chain_needs_it()
    {
        using var sandbox = NewSandbox();
        var table = DeploymentConntrack.TableName(_deployment);
        bool Exists() => NetworkNamespace.Run(sandbox.Receiver, () => NfTables.TableExists(table));
        var stateless = new Chain("INPUT", Hook.NfInput, null, Verdict.Accept, [new Rule("udp", Matches.Simple(protocol: IpProtocol.Udp), Verdict.Accept)]);

        Publisher.Publish(new Ruleset(_deployment, [stateless]), new PublishOptions(sandbox.Receiver));
        Assert.False(Exists());
        Publisher.Publish(new Ruleset(_deployment, [ServerChain(Hook.NfInput, sandbox)]), new PublishOptions(sandbox.Receiver));
        Assert.True(Exists());
        Publisher.Publish(new Ruleset(_deployment, [ServerChain(Hook.NfInput, sandbox)]), new PublishOptions(sandbox.Receiver));
        Assert.True(Exists());
        Publisher.Publish(new Ruleset(_deployment, [stateless]), new PublishOptions(sandbox.Receiver));
        Assert.False(Exists());
        Publisher.Publish(new Ruleset(_deployment, [ServerChain(Hook.NfInput, sandbox)]), new PublishOptions(sandbox.Receiver));
        Assert.True(Exists());
        Deployments.Unpublish(_deployment);
        Assert.False(Exists());
    }

    [Fact]
    public void Without_its_table_conntrack_stops_and_the_server_hears_no_replies()
    {
        using var sandbox = NewSandbox();
        Publisher.Publish(new Ruleset(_deployment, [ServerChain(Hook.NfInput, sandbox)]), new PublishOptions(sandbox.Receiver));
        using var outsideTcp = Conversation.TcpEchoServer(sandbox.Sender, Sandbox.SenderAddress, 8080);
        Assert.Equal(1, Conversation.TcpEcho(sandbox.Receiver, Sandbox.SenderAddress, 8080, rounds: 1));
        // Taking the table away by hand (what the help says not to do): nothing tracks, every packet is invalid.
        Assert.True(NetworkNamespace.Run(sandbox.Receiver, () => NfTables.DeleteTable(DeploymentConntrack.TableName(_deployment))));
        Assert.Equal(-1, Conversation.TcpEcho(sandbox.Receiver, Sandbox.SenderAddress, 8080, rounds: 1, connectTimeout: TimeSpan.FromMilliseconds(600)));
    }

    [Fact]
    public void A_table_of_its_name_that_another_process_owns_fails_the_publish_and_the_unpublish_clearly()
    {
        using var sandbox = NewSandbox();
        var table = DeploymentConntrack.TableName(_deployment);
        var server = new Ruleset(_deployment, [ServerChain(Hook.NfInput, sandbox)]);
        using (var owner = OwnedTable(sandbox.Receiver, table))
        {
            var e = Assert.Throws<BpfilterException>(() => Publisher.Publish(server, new PublishOptions(sandbox.Receiver)));
            Assert.Equal(("ConntrackUnavailable", FailureCategory.ResourceUnavailable), (e.ErrorId, e.Category));
            Assert.Contains("another process owns", e.Message);
            Assert.DoesNotContain(_deployment, Deployments.Names()); // nothing stayed behind
        }

        Publisher.Publish(server, new PublishOptions(sandbox.Receiver));
        Assert.True(NetworkNamespace.Run(sandbox.Receiver, () => NfTables.DeleteTable(table)));
        using (var owner = OwnedTable(sandbox.Receiver, table))
        {
            var e = Assert.Throws<BpfilterException>(() => Deployments.Unpublish(_deployment));
            Assert.Equal(("ConntrackNotReleased", FailureCategory.InvalidOperation), (e.ErrorId, e.Category));
            Assert.DoesNotContain(_deployment, Deployments.Names()); // the deployment is gone all the same
        }
        Assert.False(NetworkNamespace.Run(sandbox.Receiver, () => NfTables.TableExists(table)));
    }

    /// <summary>
    /// A table that an 'nft -i' process creates with the owner flag: only its netlink socket may change it, and it goes
    /// when that process ends (on dispose).
    /// </summary>
    private static IDisposable OwnedTable(string ns, string table)
    {
        var start = new ProcessStartInfo("ip") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "netns", "exec", ns, "nft", "-i" }) start.ArgumentList.Add(a);
        var nft = Process.Start(start)!;
        nft.StandardInput.WriteLine($"add table inet {table} {{ flags owner; }}");
        nft.StandardInput.Flush();
        var clock = Stopwatch.StartNew();
        while (!NetworkNamespace.Run(ns, () => NfTables.TableExists(table)))
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(5)) throw new InvalidOperationException($"nft -i made no table: {nft.StandardError.ReadToEnd()}");
            Thread.Sleep(20);
        }
        return new Owner(nft);
    }

    private sealed class Owner(Process nft) : IDisposable
    {
        public void Dispose()
        {
            nft.StandardInput.Close();
            nft.WaitForExit(5000);
            nft.Dispose();
        }
    }

    private Dictionary<string, ulong> ByRule() =>
        Deployments.Counters(_deployment).Where(c => c.Kind == CounterKind.Rule).ToDictionary(c => c.Rule, c => c.Packets);

    private static void Iptables(string ns, params string[] args) => Run("ip", ["netns", "exec", ns, "iptables-legacy", .. args]);

    /// <summary>The mangle table's INPUT counters as iptables-save -c prints them: each rule's, then the policy's.</summary>
    private static List<(ulong Packets, ulong Bytes)> MangleInputCounters(string ns)
    {
        var text = Run("ip", "netns", "exec", ns, "iptables-legacy-save", "-c", "-t", "mangle");
        (ulong, ulong) Pair(string bracketed)
        {
            var parts = bracketed.Trim('[', ']').Split(':');
            return (ulong.Parse(parts[0]), ulong.Parse(parts[1]));
        }
        var lines = text.Split('\n');
        var rules = lines.Where(l => l.StartsWith('[') && l.Contains(" -A INPUT ")).Select(l => Pair(l[..(l.IndexOf(']') + 1)])).ToList();
        var policy = lines.Single(l => l.StartsWith(":INPUT "));
        rules.Add(Pair(policy[policy.IndexOf('[')..]));
        return rules;
    }

    private static string Run(string program, params string[] args)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEnd();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"{program} {string.Join(' ', args)}: {stderr.Trim()}");
        return stdout;
    }
}

/// <summary>
/// The conversations of a protected server (the sandbox's receiver) with the outside (its sender): the server's own
/// TCP and UDP conversations out, TCP in to port 22 and port 80, unsolicited packets that pretend to be replies, and an
/// ICMP error about the server's own datagram.
/// </summary>
internal sealed class ServerScript(Sandbox sandbox)
{
    public const int Unsolicited = 5;

    public sealed record Outcome(int TcpOut, int UdpOut, int SshIn, int WebIn, int UnsolicitedReceived, bool ErrorRefused,
        (ulong Established, ulong Ssh, ulong Policy) AfterConversations, (ulong Established, ulong Ssh, ulong Policy) AfterUnsolicited,
        (ulong Established, ulong Ssh, ulong Policy) AfterError)
    {
        /// <summary>Flows: two out, two in, the unsolicited packets, the refused datagram.</summary>
        public int Conversations => 4 + Unsolicited + 1;
    }

    public Outcome Run(Func<(ulong, ulong, ulong)>? counts)
    {
        counts ??= () => default;
        using var outsideTcp = Conversation.TcpEchoServer(sandbox.Sender, Sandbox.SenderAddress, 8080);
        using var outsideUdp = Conversation.UdpEchoServer(sandbox.Sender, Sandbox.SenderAddress, 5353);
        using var ssh = Conversation.TcpEchoServer(sandbox.Receiver, Sandbox.ReceiverAddress, 22);
        using var web = Conversation.TcpEchoServer(sandbox.Receiver, Sandbox.ReceiverAddress, 80);

        // The protected host's own conversations out: every reply must come back in.
        int tcpOut = Conversation.TcpEcho(sandbox.Receiver, Sandbox.SenderAddress, 8080, rounds: 5);
        int udpOut = Conversation.UdpEcho(sandbox.Receiver, Sandbox.ReceiverAddress, Sandbox.SenderAddress, 5353, rounds: 5);
        // From outside: port 22 answers, port 80 never does (its SYN is dropped: no reset, no accept).
        int sshIn = Conversation.TcpEcho(sandbox.Sender, Sandbox.ReceiverAddress, 22, rounds: 5);
        int webIn = Conversation.TcpEcho(sandbox.Sender, Sandbox.ReceiverAddress, 80, rounds: 1, connectTimeout: TimeSpan.FromMilliseconds(600));
        Thread.Sleep(100); // the last FINs and ACKs
        var afterConversations = counts();

        // Unsolicited packets that pretend to be replies, from the outside host's own address and ports.
        using var listener = Sandbox.UdpSocketIn(sandbox.Receiver, Sandbox.ReceiverAddress, 5300);
        using var raw = Conversation.RawSocket(sandbox.Sender);
        byte[][] fakes =
        [
            Conversation.Tcp(Sandbox.SenderAddress, 8080, Sandbox.ReceiverAddress, 31000, TcpFlags.Syn | TcpFlags.Ack),
            Conversation.Tcp(Sandbox.SenderAddress, 8080, Sandbox.ReceiverAddress, 31000, TcpFlags.Ack),
            Conversation.Tcp(Sandbox.SenderAddress, 80, Sandbox.ReceiverAddress, 31001, TcpFlags.Rst | TcpFlags.Ack),
            Conversation.Udp(Sandbox.SenderAddress, 5353, Sandbox.ReceiverAddress, 5300),
            // An ICMP port unreachable about a datagram 5300 -> 7777 that the protected host never sent.
            Conversation.PortUnreachable(Sandbox.SenderAddress, Sandbox.ReceiverAddress, quotedSourcePort: 5300, quotedDestinationPort: 7777),
        ];
        foreach (var fake in fakes) Conversation.SendRaw(raw, fake);
        Thread.Sleep(150);
        var afterUnsolicited = counts();
        int unsolicitedReceived = Sandbox.Drain(listener);

        // ICMP errors about the protected host's own flows come in as related: a connected UDP socket hears "refused".
        bool refused = Conversation.UdpRefused(sandbox.Receiver, Sandbox.ReceiverAddress, Sandbox.SenderAddress, 7);
        return new Outcome(tcpOut, udpOut, sshIn, webIn, unsolicitedReceived, refused, afterConversations, afterUnsolicited, counts());
    }
}

/// <summary>Real conversations between the namespaces of a sandbox, and hand-made packets that pretend to belong to one.</summary>
internal static class Conversation
{
    /// <summary>A TCP server in <paramref name="ns"/> that echoes what each connection sends, until disposed.</summary>
    public static IDisposable TcpEchoServer(string ns, string address, int port)
    {
        var listener = NetworkNamespace.Run(ns, () =>
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            socket.Bind(new IPEndPoint(IPAddress.Parse(address), port));
            socket.Listen(8);
            return socket;
        });
        _ = Task.Run(async () =>
        {
            while (true)
            {
                Socket connection;
                try
                {
                    connection = await listener.AcceptAsync();
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                    return;
                }
                _ = Task.Run(async () =>
                {
                    using (connection)
                    {
                        var buffer = new byte[4096];
                        try
                        {
                            int n;
                            while ((n = await connection.ReceiveAsync(buffer)) > 0) await connection.SendAsync(buffer.AsMemory(0, n));
                        }
                        catch (SocketException)
                        {
                        }
                    }
                });
            }
        });
        return listener;
    }

    /// <summary>A UDP server in <paramref name="ns"/> that sends every datagram back where it came from, until disposed.</summary>
    public static IDisposable UdpEchoServer(string ns, string address, int port)
    {
        var socket = NetworkNamespace.Run(ns, () =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            s.Bind(new IPEndPoint(IPAddress.Parse(address), port));
            return s;
        });
        _ = Task.Run(async () =>
        {
            var buffer = new byte[2048];
            while (true)
            {
                try
                {
                    var received = await socket.ReceiveFromAsync(buffer, new IPEndPoint(IPAddress.Any, 0));
                    await socket.SendToAsync(buffer.AsMemory(0, received.ReceivedBytes), received.RemoteEndPoint);
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                    return;
                }
            }
        });
        return socket;
    }

    /// <summary>Connects from <paramref name="ns"/> and echoes <paramref name="rounds"/> messages; the rounds that came back, or −1 when the connection never opened.</summary>
    public static int TcpEcho(string ns, string to, int port, int rounds, TimeSpan? connectTimeout = null)
    {
        using var socket = NetworkNamespace.Run(ns, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 1000 });
        try
        {
            if (!socket.ConnectAsync(new IPEndPoint(IPAddress.Parse(to), port)).Wait(connectTimeout ?? TimeSpan.FromSeconds(3))) return -1;
        }
        catch (AggregateException)
        {
            return -1;
        }
        int echoed = 0;
        var buffer = new byte[64];
        for (int i = 0; i < rounds; i++)
        {
            var message = System.Text.Encoding.ASCII.GetBytes($"round {i}");
            socket.Send(message);
            int got = 0;
            try
            {
                while (got < message.Length) got += socket.Receive(buffer, got, message.Length - got, SocketFlags.None);
            }
            catch (SocketException)
            {
                break;
            }
            if (buffer.AsSpan(0, got).SequenceEqual(message)) echoed++;
        }
        return echoed;
    }

    /// <summary>Sends <paramref name="rounds"/> datagrams from <paramref name="ns"/> and counts the echoes that come back.</summary>
    public static int UdpEcho(string ns, string from, string to, int port, int rounds)
    {
        using var socket = Sandbox.UdpSocketIn(ns, from);
        socket.ReceiveTimeout = 1000;
        int echoed = 0;
        var buffer = new byte[64];
        for (int i = 0; i < rounds; i++)
        {
            socket.SendTo(System.Text.Encoding.ASCII.GetBytes($"datagram {i}"), new IPEndPoint(IPAddress.Parse(to), port));
            try
            {
                if (socket.Receive(buffer) > 0) echoed++;
            }
            catch (SocketException)
            {
            }
        }
        return echoed;
    }

    /// <summary>Sends one datagram on a connected socket to a port where nothing listens; true when the ICMP error reached it (ECONNREFUSED).</summary>
    public static bool UdpRefused(string ns, string from, string to, int port)
    {
        using var socket = Sandbox.UdpSocketIn(ns, from);
        socket.ReceiveTimeout = 1000;
        socket.Connect(new IPEndPoint(IPAddress.Parse(to), port));
        socket.Send(new byte[8]);
        try
        {
            socket.Receive(new byte[16]);
            return false;
        }
        catch (SocketException e)
        {
            return e.SocketErrorCode == SocketError.ConnectionRefused;
        }
    }

    /// <summary>A raw IPv4 socket (IPPROTO_RAW: the packet brings its own header) in <paramref name="ns"/>.</summary>
    public static Socket RawSocket(string ns) => NetworkNamespace.Run(ns, () => new Socket(AddressFamily.InterNetwork, SocketType.Raw, ProtocolType.Raw));

    public static void SendRaw(Socket raw, byte[] packet) =>
        raw.SendTo(packet, new IPEndPoint(new IPAddress(packet.AsSpan(16, 4)), 0));

    public static byte[] Tcp(string source, ushort sourcePort, string destination, ushort destinationPort, TcpFlags flags) =>
        PacketBuilder.Build(new PacketFields
        {
            Source = source, Destination = destination, Protocol = IpProtocol.Tcp, SourcePort = sourcePort, DestinationPort = destinationPort, TcpFlags = flags,
        }, PacketLayer.Network);

    public static byte[] Udp(string source, ushort sourcePort, string destination, ushort destinationPort) =>
        PacketBuilder.Build(new PacketFields
        {
            Source = source, Destination = destination, Protocol = IpProtocol.Udp, SourcePort = sourcePort, DestinationPort = destinationPort, Length = 40,
        }, PacketLayer.Network);

    /// <summary>An ICMP port unreachable from <paramref name="source"/> quoting a UDP datagram <paramref name="destination"/> → <paramref name="source"/>.</summary>
    public static byte[] PortUnreachable(string source, string destination, ushort quotedSourcePort, ushort quotedDestinationPort)
    {
        var quoted = Udp(destination, quotedSourcePort, source, quotedDestinationPort)[..28];
        var packet = new byte[20 + 8 + quoted.Length];
        var ip = packet.AsSpan();
        ip[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)packet.Length);
        ip[8] = 64;
        ip[9] = 1;
        IPAddress.Parse(source).GetAddressBytes().CopyTo(ip[12..]);
        IPAddress.Parse(destination).GetAddressBytes().CopyTo(ip[16..]);
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], PacketBuilder.Checksum(ip[..20], 0));
        var icmp = ip[20..];
        icmp[0] = 3; // destination unreachable
        icmp[1] = 3; // port unreachable
        quoted.CopyTo(icmp[8..]);
        BinaryPrimitives.WriteUInt16BigEndian(icmp[2..], PacketBuilder.Checksum(icmp, 0));
        return packet;
    }
}
