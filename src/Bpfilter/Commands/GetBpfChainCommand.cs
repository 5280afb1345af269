using System.Management.Automation;
using Bpfilter.Completion;
using Bpfilter.Engine;
using Bpfilter.Engine.Deployment;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Commands;

/// <summary>Lists the chains of a ruleset, or, with no ruleset, the chains deployed in the kernel.</summary>
[Cmdlet(VerbsCommon.Get, "BpfChain", DefaultParameterSetName = DeployedSet)]
[OutputType(typeof(Chain), ParameterSetName = [RulesetSet])]
[OutputType(typeof(DeployedChain), ParameterSetName = [DeployedSet])]
public sealed class GetBpfChainCommand : PSCmdlet
{
    private const string RulesetSet = "Ruleset", DeployedSet = "Deployed";

    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = RulesetSet)]
    public Ruleset? Ruleset { get; set; }

    [Parameter(Position = 0, ParameterSetName = DeployedSet)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(DeploymentNameCompleter))]
    public string[]? Name { get; set; }

    protected override void ProcessRecord()
    {
        if (Ruleset is not null)
        {
            WriteObject(Ruleset.Chains, enumerateCollection: true);
            return;
        }
        try
        {
            foreach (var deployment in DeploymentSelection.Select(this, Name))
                WriteObject(Deployments.Get(deployment).Chains, enumerateCollection: true);
        }
        catch (BpfilterException e)
        {
            ThrowTerminatingError(ErrorRecords.From(e, Name));
        }
    }
}
