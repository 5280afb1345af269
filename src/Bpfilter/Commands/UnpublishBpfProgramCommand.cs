using System.Management.Automation;
using Bpfilter.Completion;
using Bpfilter.Engine;
using Bpfilter.Engine.Deployment;

namespace Bpfilter.Commands;

/// <summary>Detaches deployments and removes their pins.</summary>
[Cmdlet(VerbsData.Unpublish, "BpfProgram", SupportsShouldProcess = true)]
[OutputType(typeof(void))]
public sealed class UnpublishBpfProgramCommand : PSCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("Deployment")]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(DeploymentNameCompleter))]
    public string[] Name { get; set; } = [];

    protected override void ProcessRecord()
    {
        IEnumerable<string> selected;
        try
        {
            Deployments.RequireUnpublishPrivileges();
            selected = DeploymentSelection.Select(this, Name).ToList();
        }
        catch (BpfilterException e)
        {
            ThrowTerminatingError(ErrorRecords.From(e, Name));
            return;
        }
        foreach (var deployment in selected)
        {
            if (!ShouldProcess($"deployment '{deployment}'", "Detach and remove")) continue;
            try
            {
                Deployments.Unpublish(deployment);
            }
            catch (BpfilterException e)
            {
                WriteError(ErrorRecords.From(e, deployment));
            }
        }
    }
}
