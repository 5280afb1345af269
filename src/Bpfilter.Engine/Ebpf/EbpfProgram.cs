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

/// <summary>A run of instructions that belongs to one part of the source (a rule, the prologue, the policy).</summary>
public sealed record InstructionRegion(int Start, int End, string Label);

/// <summary>An assembled program: final instructions with every jump resolved, and the maps it refers to.</summary>
public sealed class EbpfProgram
{
    public EbpfProgram(string name, ProgramType type, IReadOnlyList<Instruction> instructions,
        IReadOnlyList<MapReference> mapReferences, IReadOnlyList<InstructionRegion> regions, string license = "GPL")
    {
        Name = name;
        Type = type;
        Instructions = instructions;
        MapReferences = mapReferences;
        Regions = regions;
        License = license;
    }

    /// <summary>Kernel program name: at most 15 characters of [A-Za-z0-9_.].</summary>
    public string Name { get; }
    public ProgramType Type { get; }
    public IReadOnlyList<Instruction> Instructions { get; }
    public IReadOnlyList<MapReference> MapReferences { get; }
    public IReadOnlyList<InstructionRegion> Regions { get; }

    /// <summary>Always GPL: kfuncs and kernel BTF pointers refuse other licenses.</summary>
    public string License { get; }

    /// <summary>The distinct maps the program refers to, in order of first use.</summary>
    public IReadOnlyList<MapSpec> Maps => MapReferences.Select(r => r.Map).Distinct().ToList();

    /// <summary>The instructions with every map fd filled in, ready for BPF_PROG_LOAD.</summary>
    public byte[] Encode(IReadOnlyDictionary<MapSpec, int> mapFds)
    {
        var patched = Instructions.ToArray();
        foreach (var reference in MapReferences)
        {
            var slot = patched[reference.InstructionIndex];
            patched[reference.InstructionIndex] = slot with { Immediate = mapFds[reference.Map] };
        }
        return Instruction.Encode(patched);
    }
}
