using System.Management.Automation;
using Bpfilter.Completion;
using Bpfilter.Engine;
using Bpfilter.Engine.Compiler;
using Bpfilter.Engine.Deployment;
using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Kernel;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Commands;

/// <summary>
/// Lists the eBPF instructions of a ruleset's chains as compiled, or of a deployment's programs as the kernel runs
/// them, one object per instruction, in the syntax of 'bpftool prog dump xlated'.
/// </summary>
[Cmdlet(VerbsCommon.Show, "BpfProgram", DefaultParameterSetName = RulesetSet)]
[OutputType(typeof(ProgramLine))]
public sealed class ShowBpfProgramCommand : PSCmdlet
{
    private const string RulesetSet = "Ruleset", DeployedSet = "Deployed";

    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = RulesetSet)]
    public Ruleset? Ruleset { get; set; }

    [Parameter(Mandatory = true, Position = 0, ParameterSetName = DeployedSet)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(DeploymentNameCompleter))]
    public string? Name { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Chain { get; set; }

    protected override void ProcessRecord()
    {
        if (Ruleset is not null)
        {
            foreach (var chain in Select(Ruleset.Chains, c => c.Name, Ruleset.Name, Ruleset))
            {
                try
                {
                    WriteObject(ProgramListing.Of(Ruleset.Name, chain.Name, ChainCompiler.Compile(Ruleset, chain, CompileOptions.Simulation).Program), enumerateCollection: true);
                }
                catch (BpfilterException e)
                {
                    WriteError(ErrorRecords.From(e, chain));
                }
            }
            return;
        }
        try
        {
            Deployments.RequireImagePrivileges();
            var deployment = Deployments.Get(Name!);
            foreach (var chain in Select(deployment.Chains, c => c.Chain, deployment.Name, Name))
                WriteObject(ProgramImage.ReadById(chain.ProgramId).Listing(deployment.Name, chain.Chain), enumerateCollection: true);
        }
        catch (BpfilterException e)
        {
            WriteError(ErrorRecords.From(e, Name));
        }
    }

    /// <summary>Every chain, or the one -Chain names (case-insensitively unless that is ambiguous); a name that matches none is a non-terminating ChainNotFound error.</summary>
    private IEnumerable<T> Select<T>(IReadOnlyList<T> chains, Func<T, string> name, string owner, object? target)
    {
        if (Chain is null) return chains;
        // An exact match first: chain names are case-sensitive, so INPUT and input may both exist.
        var selected = chains.Where(c => string.Equals(name(c), Chain, StringComparison.Ordinal)).ToList();
        if (selected.Count == 0) selected = chains.Where(c => string.Equals(name(c), Chain, StringComparison.OrdinalIgnoreCase)).ToList();
        if (selected.Count == 0)
            WriteError(ErrorRecords.From(new BpfilterException("ChainNotFound", FailureCategory.ObjectNotFound,
                $"'{owner}' has no chain named '{Chain}' (chains: {string.Join(", ", chains.Select(name))})"), target));
        return selected;
    }
}
