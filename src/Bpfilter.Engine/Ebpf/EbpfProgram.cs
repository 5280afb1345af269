namespace Bpfilter.Engine.Ebpf;

/// <summary>Kernel program types (enum bpf_prog_type).</summary>
public enum ProgramType : uint
{
    SchedCls = 3,
    Xdp = 6,
    CgroupSkb = 8,
    Netfilter = 32,
}

/// <summary>A 64-bit immediate load whose value is the file descriptor of <paramref name="Map"/>, patched in at load time.</summary>
public sealed record MapReference(int InstructionIndex, MapSpec Map);

/// <summary>A call of the kernel function <paramref name="Name"/>, whose BTF id the loader fills in from the running kernel.</summary>
public sealed record KfuncReference(int InstructionIndex, string Name);

/// <summary>A run of instructions that belongs to one part of the source (a rule, the prologue, the policy).</summary>
public sealed record InstructionRegion(int Start, int End, string Label);

/// <summary>An assembled program: final instructions with every jump resolved, and the maps it refers to.</summary>
public sealed class EbpfProgram
{
    public EbpfProgram(string name, ProgramType type, uint expectedAttachType, IReadOnlyList<Instruction> instructions,
        IReadOnlyList<MapReference> mapReferences, IReadOnlyList<KfuncReference> kfuncReferences, IReadOnlyList<InstructionRegion> regions)
    {
        Name = name;
        Type = type;
        ExpectedAttachType = expectedAttachType;
        Instructions = instructions;
        MapReferences = mapReferences;
        KfuncReferences = kfuncReferences;
        Regions = regions;
    }

    /// <summary>Kernel program name: at most 15 characters of [A-Za-z0-9_.].</summary>
    public string Name { get; }
    public ProgramType Type { get; }

    /// <summary>BPF_PROG_LOAD's expected_attach_type (enum bpf_attach_type); some program types require it.</summary>
    public uint ExpectedAttachType { get; }
    public IReadOnlyList<Instruction> Instructions { get; }
    public IReadOnlyList<MapReference> MapReferences { get; }
    public IReadOnlyList<KfuncReference> KfuncReferences { get; }
    public IReadOnlyList<InstructionRegion> Regions { get; }

    /// <summary>Always GPL: kfuncs and kernel BTF pointers refuse other licenses.</summary>
    public string License => "GPL";

    /// <summary>The kernel functions the program calls, by name.</summary>
    public IReadOnlyList<string> Kfuncs => KfuncReferences.Select(r => r.Name).Distinct().ToList();

    /// <summary>The distinct maps the program refers to, in order of first use.</summary>
    public IReadOnlyList<MapSpec> Maps => MapReferences.Select(r => r.Map).Distinct().ToList();

    /// <summary>The instructions with every map fd and kernel function id filled in, ready for BPF_PROG_LOAD.</summary>
    public byte[] Encode(IReadOnlyDictionary<MapSpec, int> mapFds, IReadOnlyDictionary<string, int>? kfuncIds = null)
    {
        var patched = Instructions.ToArray();
        foreach (var reference in MapReferences)
            patched[reference.InstructionIndex] = patched[reference.InstructionIndex] with { Immediate = mapFds[reference.Map] };
        foreach (var reference in KfuncReferences)
        {
            if (kfuncIds is null || !kfuncIds.TryGetValue(reference.Name, out var id))
                throw new InvalidOperationException($"no BTF id was given for kernel function {reference.Name}");
            patched[reference.InstructionIndex] = patched[reference.InstructionIndex] with { Immediate = id };
        }
        return Instruction.Encode(patched);
    }
}
