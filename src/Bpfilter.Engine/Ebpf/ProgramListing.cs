namespace Bpfilter.Engine.Ebpf;

/// <summary>
/// One instruction of a program listing, as Show-BpfProgram writes it.
/// </summary>
/// <param name="Deployment">The ruleset's name (the deployment name it publishes under), or the deployment read back.</param>
/// <param name="Chain">The chain the program was compiled from.</param>
/// <param name="Region">The part of the chain the instruction belongs to ("prologue", "rule 1 drop-blocked-host", "policy", ...),
/// or, for a program read back from the kernel, which image it is.</param>
/// <param name="Index">The index of the instruction's first slot.</param>
/// <param name="Text">The line as <c>bpftool prog dump xlated</c> prints it: <c>   5: (2d) if r9 > r8 goto pc+40</c>.</param>
public sealed record ProgramLine(string Deployment, string Chain, string Region, int Index, string Text)
{
    public override string ToString() => Text;
}

/// <summary>Builds program listings: instructions disassembled, each under the region that holds it.</summary>
public static class ProgramListing
{
    /// <summary>Region of instructions that no region of the program covers.</summary>
    public const string NoRegion = "(no region)";

    /// <summary>Lists a compiled program: map loads name their maps, and each instruction is under its region's label.</summary>
    public static IEnumerable<ProgramLine> Of(string deployment, string chain, EbpfProgram program)
    {
        foreach (var line in Disassembler.Disassemble(program))
        {
            var region = program.Regions.FirstOrDefault(r => line.Index >= r.Start && line.Index < r.End)?.Label ?? NoRegion;
            yield return new ProgramLine(deployment, chain, region, line.Index, line.Line);
        }
    }

    /// <summary>Lists <paramref name="instructions"/> under one region label (a translated image has no regions of its own).</summary>
    public static IEnumerable<ProgramLine> Of(string deployment, string chain, string region, IReadOnlyList<Instruction> instructions,
        DisassemblyOptions? options = null) =>
        Disassembler.Disassemble(instructions, options).Select(line => new ProgramLine(deployment, chain, region, line.Index, line.Line));
}
