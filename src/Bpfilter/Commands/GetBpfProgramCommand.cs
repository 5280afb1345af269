using System.Management.Automation;
using Bpfilter.Completion;
using Bpfilter.Engine;
using Bpfilter.Engine.Deployment;

namespace Bpfilter.Commands;

/// <summary>Lists the deployed programs: where each runs, the kernel's program id, its size, when it was loaded, and whether it is stale.</summary>
[Cmdlet(VerbsCommon.Get, "BpfProgram")]
[OutputType(typeof(DeployedProgram))]
public sealed class GetBpfProgramCommand : PSCmdlet
{
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("Deployment")]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(DeploymentNameCompleter))]
    public string[]? Name { get; set; }

    protected override void ProcessRecord()
    {
        try
        {
            foreach (var deployment in DeploymentSelection.Select(this, Name))
                WriteObject(Deployments.Programs(deployment), enumerateCollection: true);
        }
        catch (BpfilterException e)
        {
            ThrowTerminatingError(ErrorRecords.From(e, Name));
        }
    }
}
