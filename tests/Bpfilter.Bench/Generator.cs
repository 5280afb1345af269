using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Kernel;

namespace Bpfilter.Bench;

/// <summary>What one generator run measured.</summary>
/// <param name="Sent">Frames the program redirected over the whole run (warm-up included).</param>
/// <param name="Mpps">Frames per microsecond between the warm-up mark and the last timestamp the program took.</param>
internal sealed record GeneratorRun(ulong Sent, double Mpps);

/// <summary>
/// A packet generator as xdp-trafficgen is one: BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES runs a tiny XDP
/// program on copies of one 64-byte UDP frame, and the program redirects each into the generator's veth end, whose
/// peer receives it (about 56 ns a frame, against 1.45 µs for an AF_PACKET sender that would share the CPU with the
/// receiver). The run is started with the largest repeat count and ended by a signal to the running thread: the
/// kernel checks for one between batches and returns EINTR. The interval comes from timestamps the program itself took
/// (the first after a warm-up, then every 64 frames), not from the wall clock, since each run begins by swapping the
/// XDP dispatcher (about 20 ms). Batches of 64: at 256 one batch can overfill the receiver's 256-slot ring.
/// </summary>
internal sealed class Generator : IDisposable
{
    private const uint BatchSize = 64;
    private const ulong WarmupFrames = 256;
    private const int StampEvery = 64;
    private const Helper Redirect = (Helper)23; // bpf_redirect(ifindex, flags)

    private readonly MapSpec _statsSpec = new("gen_stats", MapType.Array, 4, 32, 1);
    private readonly BpfMap _stats;
    private readonly LoadedProgram _program;
    private readonly byte[] _frame;
    private readonly string _namespace;

    public Generator(Topology topology, ushort destinationPort)
    {
        _namespace = topology.Generator;
        uint ifindex = NetworkNamespace.Run(topology.Generator, () => Interfaces.IndexOf(topology.GeneratorInterface, topology.Generator));
        _frame = Frame(topology.ReceiverMac, topology.GeneratorMac, destinationPort);
        _stats = BpfMap.Create(_statsSpec);
        _program = LoadedProgram.Load(Program(ifindex), new Dictionary<MapSpec, BpfMap> { [_statsSpec] = _stats });
    }

    /// <summary>Sends for about <paramref name="duration"/> and reports what the program counted.</summary>
    public GeneratorRun Run(TimeSpan duration)
    {
        _stats.Update(new byte[4], new byte[32]);
        int tid = 0;
        using var started = new ManualResetEventSlim();
        var stopper = new Thread(() =>
        {
            started.Wait();
            Thread.Sleep(duration);
            // SIGCONT: .NET catches it (to restore the terminal), so it interrupts the call and changes nothing else.
            Native.Syscall(Native.SysTgkill, Environment.ProcessId, tid, Native.SigCont);
        });
        stopper.Start();
        NetworkNamespace.Run(_namespace, () =>
        {
            tid = (int)Native.Syscall(Native.SysGettid, 0, 0, 0);
            started.Set();
            // The call ends with EINTR when the stopper's signal arrives; it never sends all 2^32-1 frames.
            while (_program.TestRunLiveFrames(_frame, uint.MaxValue, BatchSize)) { }
        });
        stopper.Join();
        var value = new byte[32];
        _stats.Lookup(new byte[4], value);
        ulong count = BinaryPrimitives.ReadUInt64LittleEndian(value);
        ulong first = BinaryPrimitives.ReadUInt64LittleEndian(value.AsSpan(8));
        ulong last = BinaryPrimitives.ReadUInt64LittleEndian(value.AsSpan(16));
        ulong lastCount = BinaryPrimitives.ReadUInt64LittleEndian(value.AsSpan(24));
        double mpps = lastCount > WarmupFrames && last > first ? (lastCount - WarmupFrames) * 1000.0 / (last - first) : 0;
        return new GeneratorRun(count, mpps);
    }

    /// <summary>
    /// stats = {u64 frames; u64 ns at the warm-up mark; u64 ns of the latest stamp; u64 frames at that stamp};
    /// count, stamp now and then, redirect into the generator's veth end.
    /// </summary>
    private EbpfProgram Program(uint ifindex)
    {
        var asm = new Assembler();
        var redirect = asm.NewLabel("redirect");
        var mark = asm.NewLabel("warmup_mark");
        var stamp = asm.NewLabel("stamp");
        var aborted = asm.NewLabel("aborted");
        asm.Store(Size.Word, Register.R10, -4, 0);
        asm.LoadMap(Register.R1, _statsSpec);
        asm.Mov(Register.R2, Register.R10);
        asm.Alu64(AluOp.Add, Register.R2, -4);
        asm.Call(Helper.MapLookupElem);
        asm.Jump(JumpOp.Jeq, Register.R0, 0, aborted);
        asm.Mov(Register.R6, Register.R0);
        asm.Load(Size.DoubleWord, Register.R7, Register.R6, 0);
        asm.Alu64(AluOp.Add, Register.R7, 1);
        asm.Store(Size.DoubleWord, Register.R6, 0, Register.R7);
        asm.Jump(JumpOp.Jeq, Register.R7, (int)WarmupFrames, mark);
        asm.Mov(Register.R1, Register.R7);
        asm.Alu64(AluOp.And, Register.R1, StampEvery - 1);
        asm.Jump(JumpOp.Jne, Register.R1, 0, redirect);
        asm.Jump(JumpOp.Jlt, Register.R7, (int)WarmupFrames, redirect);
        asm.Mark(stamp);
        asm.Call(Helper.KtimeGetNs);
        asm.Store(Size.DoubleWord, Register.R6, 16, Register.R0);
        asm.Store(Size.DoubleWord, Register.R6, 24, Register.R7);
        asm.Jump(redirect);
        asm.Mark(mark);
        asm.Call(Helper.KtimeGetNs);
        asm.Store(Size.DoubleWord, Register.R6, 8, Register.R0);
        asm.Store(Size.DoubleWord, Register.R6, 16, Register.R0);
        asm.Store(Size.DoubleWord, Register.R6, 24, Register.R7);
        asm.Mark(redirect);
        asm.Mov(Register.R1, (long)ifindex);
        asm.Mov(Register.R2, 0L);
        asm.Call(Redirect);
        asm.Exit();
        asm.Mark(aborted);
        asm.Mov(Register.R0, 0L);
        asm.Exit();
        return asm.Assemble("bench_gen", ProgramType.Xdp);
    }

    /// <summary>64 bytes: Ethernet, IPv4 (checksummed, so the receiver's stack takes it), UDP without a checksum.</summary>
    public static byte[] Frame(byte[] destinationMac, byte[] sourceMac, ushort destinationPort)
    {
        var frame = new byte[64];
        destinationMac.CopyTo(frame, 0);
        sourceMac.CopyTo(frame, 6);
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(12), 0x0800);
        var ip = frame.AsSpan(14, 20);
        ip[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], 50);
        ip[8] = 64;
        ip[9] = 17;
        System.Net.IPAddress.Parse(Topology.GeneratorAddress).GetAddressBytes().CopyTo(ip[12..]);
        System.Net.IPAddress.Parse(Topology.ReceiverAddress).GetAddressBytes().CopyTo(ip[16..]);
        uint sum = 0;
        for (int i = 0; i < 20; i += 2) sum += BinaryPrimitives.ReadUInt16BigEndian(ip[i..]);
        while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], (ushort)~sum);
        var udp = frame.AsSpan(34, 8);
        BinaryPrimitives.WriteUInt16BigEndian(udp, 12345);
        BinaryPrimitives.WriteUInt16BigEndian(udp[2..], destinationPort);
        BinaryPrimitives.WriteUInt16BigEndian(udp[4..], 30);
        return frame;
    }

    public void Dispose()
    {
        _program.Dispose();
        _stats.Dispose();
    }

    private static class Native
    {
        public const long SysGettid = 186, SysTgkill = 234;
        public const int SigCont = 18;

        [DllImport("libc", EntryPoint = "syscall", SetLastError = true)]
        public static extern long Syscall(long number, long a, long b, long c);
    }
}
