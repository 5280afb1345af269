using Bpfilter.Engine.Compiler;
using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Kernel;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Simulation;

/// <summary>
/// The same compiled chain loaded into the kernel, with a scratch counter map of its own (never a deployment's), and
/// run with BPF_PROG_TEST_RUN; the decision is read from the counters as the interpreter's is. Needs Linux and
/// CAP_BPF with CAP_NET_ADMIN.
/// </summary>
public sealed class KernelChainRunner : IDisposable
{
    /// <summary>What loading and test-running a network program needs.</summary>
    public static readonly int[] RequiredCapabilities = [Privileges.CapBpf, Privileges.CapNetAdmin];

    private readonly BpfMap _counters;
    private readonly List<BpfMap> _sets = new(); // and the limit state, log and optimizer tables: the maps besides the counters
    private readonly LoadedProgram _program;

    public KernelChainRunner(CompiledChain compiled)
    {
        Privileges.Require(RequiredCapabilities, "Running a packet through the kernel (-Kernel)");
        Compiled = compiled;
        _counters = BpfMap.Create(compiled.Counters);
        try
        {
            var maps = new Dictionary<MapSpec, BpfMap> { [compiled.Counters] = _counters };
            foreach (var (set, spec) in compiled.Sets)
            {
                var map = BpfMap.Create(spec);
                _sets.Add(map);
                foreach (var key in SetMaps.KeysOf(set)) map.Update(key, SetMaps.Present);
                maps[spec] = map;
            }
            foreach (var table in compiled.LookupTables)
            {
                var map = BpfMap.CreateFrozen(table.Map, table.Entries);
                _sets.Add(map);
                maps[table.Map] = map;
            }
            foreach (var spec in new[] { compiled.Limits, compiled.Log }.OfType<MapSpec>())
            {
                var map = BpfMap.Create(spec);
                _sets.Add(map);
                maps[spec] = map;
            }
            _program = LoadedProgram.Load(compiled.Program, maps);
        }
        catch
        {
            _counters.Dispose();
            foreach (var map in _sets) map.Dispose();
            throw;
        }
    }

    public CompiledChain Compiled { get; }

    /// <summary>Runs <paramref name="packet"/> (the bytes the hook sees, as for <see cref="ChainSimulator.Run"/>) through the kernel.</summary>
    public PacketDecision Run(ReadOnlySpan<byte> packet)
    {
        var before = CounterTotals();
        uint returnCode = _program.TestRun(TestRunInput(Compiled.Chain.Hook, packet));
        return ChainSimulator.Decide(Compiled, before, CounterTotals(), (int)returnCode);
    }

    /// <summary>BPF_PROG_TEST_RUN's average nanoseconds per run over <paramref name="repeat"/> runs of <paramref name="packet"/>.</summary>
    public uint AverageNanoseconds(ReadOnlySpan<byte> packet, uint repeat) =>
        _program.TestRunDuration(TestRunInput(Compiled.Chain.Hook, packet), repeat);

    public (ulong Packets, ulong Bytes)[] CounterTotals() => ChainSimulator.CounterTotals(_counters.LookupPerCpu, Compiled.Layout.SlotCount);

    /// <summary>
    /// BPF_PROG_TEST_RUN's data_in for a hook: cgroup_skb test runs take an Ethernet frame and pull its header before
    /// the program runs, so a network-layer packet gets one in front; the other hooks take the bytes as they see them.
    /// </summary>
    public static byte[] TestRunInput(Hook hook, ReadOnlySpan<byte> packet)
    {
        if (hook is not (Hook.CgroupIngress or Hook.CgroupEgress)) return packet.ToArray();
        var frame = new byte[PacketBuilder.EthernetHeaderLength + packet.Length];
        frame[0] = 0x02; frame[5] = 0x02; frame[6] = 0x02; frame[11] = 0x01;
        ushort etherType = packet.Length > 0 && packet[0] >> 4 == 6 ? (ushort)0x86dd : (ushort)0x0800;
        frame[12] = (byte)(etherType >> 8);
        frame[13] = (byte)etherType;
        packet.CopyTo(frame.AsSpan(PacketBuilder.EthernetHeaderLength));
        return frame;
    }

    public void Dispose()
    {
        _program.Dispose();
        _counters.Dispose();
        foreach (var map in _sets) map.Dispose();
    }
}
