using System.Management.Automation;
using Bpfilter.Completion;
using Bpfilter.Engine;
using Bpfilter.Engine.Deployment;

namespace Bpfilter.Commands;

/// <summary>Reads the per-rule packet and byte counters of deployments from their pinned maps.</summary>
[Cmdlet(VerbsCommon.Get, "BpfCounter")]
[OutputType(typeof(CounterRow))]
public sealed class GetBpfCounterCommand : PSCmdlet
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
                WriteObject(Deployments.Counters(deployment), enumerateCollection: true);
        }
        catch (BpfilterException e)
        {
            WriteError(ErrorRecords.From(e, Name));
        }
    }
}
