using System.Management.Automation;
using Bpfilter.Completion;
using Bpfilter.Engine;

namespace Bpfilter;

/// <summary>
/// The shape of the cmdlets that read deployments by name (Get-BpfCounter, Get-BpfProgram): -Name takes
/// wildcards and names piped by property (Name or Deployment), no -Name means every deployment, a plain name
/// that matches nothing is a not-found error, and an error reading one deployment does not stop the others.
/// </summary>
public abstract class DeploymentReaderCommand : PSCmdlet
{
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("Deployment")]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(DeploymentNameCompleter))]
    public string[]? Name { get; set; }

    /// <summary>What to write for one deployment.</summary>
    protected abstract IEnumerable<object> Read(string deployment);

    protected override void ProcessRecord()
    {
        IReadOnlyList<string> selected;
        try
        {
            selected = DeploymentSelection.Select(this, Name).ToList();
        }
        catch (BpfilterException e)
        {
            ThrowTerminatingError(ErrorRecords.From(e, Name));
            return;
        }
        foreach (var deployment in selected)
        {
            try
            {
                WriteObject(Read(deployment), enumerateCollection: true);
            }
            catch (BpfilterException e)
            {
                WriteError(ErrorRecords.From(e, deployment));
            }
        }
    }
}
