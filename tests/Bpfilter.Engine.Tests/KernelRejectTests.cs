using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Bpfilter.Engine.Compiler;
using Bpfilter.Engine.Deployment;
using Bpfilter.Engine.Kernel;
using Bpfilter.Engine.Rules;
using Bpfilter.Engine.Simulation;
using Xunit;

namespace Bpfilter.Engine.Tests;

/// <summary>
/// reject at XDP: the answer the kernel sends (BPF_PROG_TEST_RUN's data_out) is byte for byte the interpreter's, its
/// checksums are right, and it says what RFC 9293 and RFC 792/4443 say; what must get no answer is dropped; and a
/// real client across a veth is refused at once instead of waiting.
/// </summary>
[Collection("kernel")]
public sealed class KernelRejectTests
{
    private static CompiledChain Compile(RejectWith with = RejectWith.Default, IpProtocol? protocol = null)
    {
        var chain = new Chain("INPUT", Hook.Xdp, "lo", Verdict.Accept,
            [new Rule("no", new Match { Protocol = protocol is { } p ? new ProtocolMatch(p) : null, Destination = null }, Verdict.Reject(with))]);
        return ChainCompiler.Compile(new Ruleset("reject", [chain]), chain, CompileOptions.Simulation);
    }

    private static (uint Code, byte[] Packet) Both(CompiledChain compiled, byte[] frame)
    {
        var interpreted = new ChainSimulator(compiled).Interpreter.Run(frame);
        using var counters = BpfMap.Create(compiled.Counters);
        using var program = LoadedProgram.Load(compiled.Program, new Dictionary<Ebpf.MapSpec, BpfMap> { [compiled.Counters] = counters });
        uint code = program.TestRun(frame, out var output);
        Assert.Equal(code, interpreted.ReturnCode);
        if (code == XdpFlavour.Transmit) Assert.Equal(Convert.ToHexString(output), Convert.ToHexString(interpreted.Packet));
        return (code, output);
    }

    private static ushort Checksum(ReadOnlySpan<byte> data, uint sum = 0)
    {
        for (int i = 0; i + 1 < data.Length; i += 2) sum += BinaryPrimitives.ReadUInt16BigEndian(data[i..]);
        if (data.Length % 2 == 1) sum += (uint)data[^1] << 8;
        while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
        return (ushort)sum;
    }

    private static uint Pseudo(ReadOnlySpan<byte> source, ReadOnlySpan<byte> destination, int protocol, int length)
    {
        uint sum = (uint)protocol + (uint)length;
        for (int i = 0; i < source.Length; i += 2) sum += BinaryPrimitives.ReadUInt16BigEndian(source[i..]) + (uint)BinaryPrimitives.ReadUInt16BigEndian(destination[i..]);
        return sum;
    }

    private static byte[] Frame(PacketFields fields) => PacketBuilder.Build(fields, PacketLayer.Ethernet);

    [Fact]
    public void A_tcp_syn_gets_a_reset_that_acknowledges_it()
    {
        var syn = Frame(new PacketFields { Source = "10.0.0.1", Destination = "10.0.0.2", Protocol = IpProtocol.Tcp, SourcePort = 40000, DestinationPort = 22 });
        var (code, reply) = Both(Compile(), syn);
        Assert.Equal((uint)XdpFlavour.Transmit, code);
        Assert.Equal(54, reply.Length);
        Assert.Equal(syn.AsSpan(0, 6).ToArray(), reply.AsSpan(6, 6).ToArray());      // back to where it came from
        var ip = reply.AsSpan(14, 20);
        Assert.Equal(0xffff, Checksum(ip));
        Assert.Equal(("10.0.0.2", "10.0.0.1"), (new IPAddress(ip.Slice(12, 4)).ToString(), new IPAddress(ip.Slice(16, 4)).ToString()));
        var tcp = reply.AsSpan(34, 20);
        Assert.Equal(0xffff, Checksum(tcp, Pseudo(ip.Slice(12, 4), ip.Slice(16, 4), 6, 20)));
        Assert.Equal((22, 40000), (BinaryPrimitives.ReadUInt16BigEndian(tcp), BinaryPrimitives.ReadUInt16BigEndian(tcp[2..])));
        Assert.Equal((0u, 2u), (BinaryPrimitives.ReadUInt32BigEndian(tcp[4..]), BinaryPrimitives.ReadUInt32BigEndian(tcp[8..]))); // the builder's SYN has seq 1
        Assert.Equal((byte)(TcpFlags.Rst | TcpFlags.Ack), tcp[13]);
    }

    [Fact]
    public void An_ipv6_ack_gets_a_reset_with_its_acknowledgement_number()
    {
        var ack = Frame(new PacketFields { Source = "2001:db8::1", Destination = "2001:db8::2", Protocol = IpProtocol.Tcp, SourcePort = 40000, DestinationPort = 80, TcpFlags = TcpFlags.Ack });
        BinaryPrimitives.WriteUInt32BigEndian(ack.AsSpan(14 + 40 + 8), 0x12345678); // the segment's acknowledgement number
        var (code, reply) = Both(Compile(), ack);
        Assert.Equal((uint)XdpFlavour.Transmit, code);
        Assert.Equal(74, reply.Length);
        var ip = reply.AsSpan(14, 40);
        var tcp = reply.AsSpan(54, 20);
        Assert.Equal(0xffff, Checksum(tcp, Pseudo(ip.Slice(8, 16), ip.Slice(24, 16), 6, 20)));
        Assert.Equal(0x12345678u, BinaryPrimitives.ReadUInt32BigEndian(tcp[4..]));
        Assert.Equal((byte)TcpFlags.Rst, tcp[13]);
    }

    [Theory]
    [InlineData("10.0.0.1", "10.0.0.2", 3, 3, 70)]
    [InlineData("2001:db8::1", "2001:db8::2", 1, 4, 110)]
    public void A_udp_datagram_gets_port_unreachable_quoting_it(string source, string destination, int type, int code, int length)
    {
        var datagram = Frame(new PacketFields { Source = source, Destination = destination, Protocol = IpProtocol.Udp, SourcePort = 5000, DestinationPort = 53, Length = 100 });
        var (result, reply) = Both(Compile(), datagram);
        Assert.Equal((uint)XdpFlavour.Transmit, result);
        Assert.Equal(length, reply.Length);
        bool v6 = source.Contains(':');
        int l4 = v6 ? 54 : 34;
        var icmp = reply.AsSpan(l4);
        Assert.Equal((type, code), (icmp[0], icmp[1]));
        uint pseudo = v6 ? Pseudo(reply.AsSpan(22, 16), reply.AsSpan(38, 16), 58, icmp.Length) : 0;
        Assert.Equal(0xffff, Checksum(icmp, pseudo));
        if (!v6) Assert.Equal(0xffff, Checksum(reply.AsSpan(14, 20)));
        Assert.Equal(datagram.AsSpan(14, icmp.Length - 8).ToArray(), icmp[8..].ToArray()); // the quoted packet
    }

    [Theory]
    [InlineData("an ICMP error", "10.0.0.1", "10.0.0.2", 1, (byte)3)]
    [InlineData("a multicast destination", "10.0.0.1", "224.0.0.9", 17, null)]
    [InlineData("an ICMPv6 error", "2001:db8::1", "2001:db8::2", 1, (byte)1)]
    [InlineData("an IPv6 multicast destination", "2001:db8::1", "ff02::1", 17, null)]
    public void What_must_get_no_answer_is_dropped(string what, string source, string destination, int protocol, byte? icmpType)
    {
        var packet = Frame(new PacketFields { Source = source, Destination = destination, Protocol = new IpProtocol((byte)protocol), IcmpType = icmpType,
            SourcePort = protocol == 17 ? 1 : null, DestinationPort = protocol == 17 ? 2 : null });
        Assert.True(Both(Compile(), packet).Code == 1, $"{what} was answered");
    }

    [Fact]
    public void A_reset_is_never_answered_and_tcp_reset_needs_tcp()
    {
        var rst = Frame(new PacketFields { Source = "10.0.0.1", Destination = "10.0.0.2", Protocol = IpProtocol.Tcp, SourcePort = 1, DestinationPort = 2, TcpFlags = TcpFlags.Rst });
        Assert.Equal(1u, Both(Compile(), rst).Code);
        Assert.Throws<RulesetValidationException>(() => Compile(RejectWith.TcpReset));
        Assert.Equal((uint)XdpFlavour.Transmit, Both(Compile(RejectWith.TcpReset, IpProtocol.Tcp), Frame(new PacketFields { Protocol = IpProtocol.Tcp, SourcePort = 1, DestinationPort = 2 })).Code);
    }

    [Theory]
    [InlineData(Hook.NfInput)]
    [InlineData(Hook.TcIngress)]
    [InlineData(Hook.CgroupIngress)]
    public void Hooks_that_cannot_answer_refuse_reject_at_compile_time(Hook hook)
    {
        var chain = new Chain("INPUT", hook, hook == Hook.TcIngress ? "lo" : null, Verdict.Accept, [new Rule("no", Match.Any, Verdict.Reject())],
            cgroup: hook == Hook.CgroupIngress ? "bpft-x" : null);
        var e = Assert.Throws<BpfilterException>(() => ChainCompiler.Compile(chain));
        Assert.Equal("RejectNotAtHook", e.ErrorId);
    }

    [Fact]
    public void A_client_across_a_veth_is_refused_at_once()
    {
        using var sandbox = new Sandbox();
        var name = $"bpft-{sandbox.Id}";
        var peer = $"bpft-{sandbox.Id}-tx";
        try
        {
            var chain = new Chain("INPUT", Hook.Xdp, sandbox.ReceiverInterface, Verdict.Accept,
                [new Rule("closed", new Match { Protocol = new(IpProtocol.Tcp), DestinationPort = PortMatch.Single(9300) }, Verdict.Reject())]);
            Publisher.Publish(new Ruleset(name, [chain]), new PublishOptions(sandbox.Receiver));
            // A veth takes frames that its peer sends back with XDP_TX only while it runs NAPI: an XDP program of its own turns it on.
            Publisher.Publish(new Ruleset(peer, [new Chain("INPUT", Hook.Xdp, sandbox.SenderInterface, Verdict.Accept, [])]), new PublishOptions(sandbox.Sender));
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var error = NetworkNamespace.Run(sandbox.Sender, () =>
            {
                using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                try
                {
                    return socket.ConnectAsync(new IPEndPoint(IPAddress.Parse(Sandbox.ReceiverAddress), 9300)).Wait(TimeSpan.FromSeconds(5))
                        ? SocketError.Success : SocketError.TimedOut;
                }
                catch (AggregateException e) when (e.InnerException is SocketException s)
                {
                    return s.SocketErrorCode;
                }
            });
            Assert.Equal(SocketError.ConnectionRefused, error);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3), $"the refusal took {clock.Elapsed}");
            Assert.True(Deployments.Counters(name).Single(c => c.Rule == "closed").Packets >= 1);
        }
        finally
        {
            foreach (var deployment in new[] { name, peer })
                if (Deployments.Names().Contains(deployment)) Deployments.Unpublish(deployment);
        }
    }
}
