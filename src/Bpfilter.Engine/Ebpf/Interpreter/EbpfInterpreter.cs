namespace Bpfilter.Engine.Ebpf.Interpreter;

/// <summary>How the interpreter runs a program.</summary>
public sealed record InterpreterOptions
{
    /// <summary>The context description; null for the program type's own (<see cref="ContextLayout.For"/>).</summary>
    public ContextLayout? Context { get; init; }

    /// <summary>Instructions one run may execute before it fails as a loop (the verifier's budget is 1,000,000 too).</summary>
    public long StepLimit { get; init; } = 1_000_000;

    /// <summary>The CPU the program runs on: the copy of per-CPU map values it sees, and bpf_get_smp_processor_id.</summary>
    public int Cpu { get; init; }

    /// <summary>bpf_ktime_get_ns and its siblings; null for a monotonic clock of this process.</summary>
    public Func<ulong>? Clock { get; init; }

    /// <summary>The fields of kernel objects behind the context that the program may load (the kernel's offsets).</summary>
    public IReadOnlyList<KernelField> KernelFields { get; init; } = [];

    /// <summary>Where the kernel keeps what a run's <see cref="ConntrackModel"/> fills in; null: programs read no conntrack field.</summary>
    public ConntrackLayout? Conntrack { get; init; }

    /// <summary>Seed of bpf_get_prandom_u32, so that runs repeat.</summary>
    public int RandomSeed { get; init; }

    /// <summary>Record every executed instruction index in <see cref="ExecutionResult.Path"/>.</summary>
    public bool RecordPath { get; init; }

    /// <summary>Names of kernel functions by BTF id, for calls that the program's <see cref="EbpfProgram.KfuncReferences"/> do not name.</summary>
    public IReadOnlyDictionary<int, string>? KfuncNames { get; init; }
}

/// <summary>What one run did.</summary>
/// <param name="ReturnValue">r0 at the final exit.</param>
/// <param name="Steps">Instructions executed (an ld_imm64 counts once).</param>
/// <param name="Packet">The packet as the program left it.</param>
/// <param name="Path">The index of every instruction executed, in order (empty unless <see cref="InterpreterOptions.RecordPath"/>).</param>
/// <param name="TraceOutput">Lines written by bpf_trace_printk.</param>
public sealed record ExecutionResult(ulong ReturnValue, long Steps, byte[] Packet, IReadOnlyList<int> Path, IReadOnlyList<string> TraceOutput)
{
    /// <summary>The u32 that BPF_PROG_TEST_RUN reports as retval.</summary>
    public uint ReturnCode => (uint)ReturnValue;
}

/// <summary>
/// Runs eBPF programs in process, without a kernel: every instruction class (ALU and ALU64, JMP and JMP32, loads and
/// stores, sign-extending loads, atomics, 64-bit immediates with map references, bpf-to-bpf calls), the helpers and
/// kernel functions Bpfilter's programs call, on <see cref="InMemoryMap"/>s. Memory is a set of tagged regions
/// (context, packet, stack frames, map values): every access is checked against the region its pointer came from,
/// and a bad program ends with an <see cref="InterpreterException"/> that names the instruction.
/// </summary>
public sealed class EbpfInterpreter
{
    private readonly InMemoryMap?[] _mapAt;

    public EbpfInterpreter(EbpfProgram program, IReadOnlyDictionary<MapSpec, InMemoryMap> maps, InterpreterOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(program);
        ArgumentNullException.ThrowIfNull(maps);
        Program = program;
        Options = options ?? new InterpreterOptions();
        Context = Options.Context ?? ContextLayout.For(program.Type);
        Maps = maps;
        Code = program.Instructions.ToArray();
        _mapAt = new InMemoryMap?[Code.Length];
        foreach (var reference in program.MapReferences)
        {
            if (reference.InstructionIndex < 0 || reference.InstructionIndex >= Code.Length)
                throw new InterpreterException(-1, null, $"a map reference names instruction {reference.InstructionIndex}, outside the program");
            if (!maps.TryGetValue(reference.Map, out var map))
                throw new InterpreterException(reference.InstructionIndex, TextOf(reference.InstructionIndex),
                    $"refers to map {reference.Map.Name}, which was not given to the interpreter");
            if (map.IsPerCpu && Options.Cpu >= map.CpuCount)
                throw new ArgumentOutOfRangeException(nameof(options), Options.Cpu, $"map {map.Spec.Name} has values for {map.CpuCount} CPUs only");
            _mapAt[reference.InstructionIndex] = map;
        }
        SecondSlot = new bool[Code.Length];
        for (int i = 0; i < Code.Length; i++)
        {
            if (Code[i].IsLoadImm64 && i + 1 < Code.Length) SecondSlot[++i] = true;
        }
    }

    public EbpfProgram Program { get; }
    public InterpreterOptions Options { get; }
    public ContextLayout Context { get; }
    public IReadOnlyDictionary<MapSpec, InMemoryMap> Maps { get; }

    internal Instruction[] Code { get; }
    internal bool[] SecondSlot { get; }
    internal InMemoryMap? MapAt(int index) => _mapAt[index];

    private Dictionary<int, string>? _kfuncs;

    /// <summary>The kernel function the call at <paramref name="index"/> names, from the program's kfunc references.</summary>
    internal string? KfuncAt(int index)
    {
        _kfuncs ??= Program.KfuncReferences.GroupBy(k => k.InstructionIndex).ToDictionary(g => g.Key, g => g.First().Name);
        return _kfuncs.GetValueOrDefault(index);
    }

    private Dictionary<int, string>? _texts;

    /// <summary>Instruction <paramref name="index"/> as the verifier prints it, for messages; computed at the first fault.</summary>
    internal string? TextOf(int index)
    {
        _texts ??= Disassembler.Disassemble(Program).ToDictionary(l => l.Index, l => l.Text);
        return _texts.GetValueOrDefault(index);
    }

    /// <summary>The clock when none is given: nanoseconds since this process started, never going back.</summary>
    internal static readonly System.Diagnostics.Stopwatch Monotonic = System.Diagnostics.Stopwatch.StartNew();

    /// <summary>
    /// Runs the program once on <paramref name="packet"/> (the bytes the hook sees: a frame at XDP and TC, an IP
    /// packet at cgroup and netfilter hooks). <paramref name="contextValues"/> sets scalar context fields by name;
    /// <paramref name="conntrack"/> says what connection tracking shows the run (none when null). Maps keep what the
    /// run wrote.
    /// </summary>
    public ExecutionResult Run(ReadOnlySpan<byte> packet, IReadOnlyDictionary<string, ulong>? contextValues = null, ConntrackModel? conntrack = null) =>
        new Machine(this, packet.ToArray(), contextValues, conntrack ?? ConntrackModel.None).Execute();
}
