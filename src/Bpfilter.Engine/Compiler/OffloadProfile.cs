using Bpfilter.Engine.Ebpf;

namespace Bpfilter.Engine.Compiler;

/// <summary>
/// What XDP hardware offload (the nfp driver, the one upstream BPF offload target) accepts: array and hash maps
/// only, a short list of helpers, no kernel functions, no bpf-to-bpf calls. A chain that needs more is refused
/// before anything loads, with each rule that stands in the way named.
/// </summary>
public static class OffloadProfile
{
    private static readonly HashSet<MapType> Maps = [MapType.Array, MapType.Hash];
    private static readonly HashSet<int> Helpers = [(int)Helper.MapLookupElem, (int)Helper.MapUpdateElem, 3 /* map_delete_elem */, 7 /* get_prandom_u32 */];

    /// <summary>Each instruction the NIC cannot run, labelled with the region (rule) it belongs to.</summary>
    public static IReadOnlyList<string> Violations(EbpfProgram program)
    {
        var found = new List<string>();
        string Where(int index) => program.Regions.FirstOrDefault(r => index >= r.Start && index < r.End)?.Label ?? $"instruction {index}";
        foreach (var map in program.Maps.Where(m => !Maps.Contains(m.Type))) found.Add($"map {map.Name} is a {map.Type} map (offload has array and hash maps only)");
        for (int i = 0; i < program.Instructions.Count; i++)
        {
            var insn = program.Instructions[i];
            if (insn.Opcode != 0x85) continue;
            if (insn.Src == 2) found.Add($"{Where(i)} calls a kernel function, which offload cannot");
            else if (insn.Src == 1) found.Add($"{Where(i)} makes a bpf-to-bpf call, which offload cannot");
            else if (!Helpers.Contains(insn.Immediate)) found.Add($"{Where(i)} calls helper #{insn.Immediate}, which offload does not have");
        }
        return found;
    }

    public static void Check(CompiledChain chain)
    {
        var violations = Violations(chain.Program);
        if (violations.Count > 0)
            throw new BpfilterException("OffloadIncompatible", FailureCategory.InvalidData,
                $"chain '{chain.Chain.Name}' cannot be offloaded: {string.Join("; ", violations)}");
    }
}
