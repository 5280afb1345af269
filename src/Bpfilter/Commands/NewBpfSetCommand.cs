using System.Management.Automation;
using Bpfilter.Completion;
using Bpfilter.Engine;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Commands;

/// <summary>Builds a named set of addresses, networks or ports, which rules refer to as '@name'.</summary>
[Cmdlet(VerbsCommon.New, "BpfSet")]
[OutputType(typeof(NamedSet))]
public sealed class NewBpfSetCommand : PSCmdlet
{
    [Parameter(Mandatory = true, Position = 0)]
    public string Name { get; set; } = "";

    [Parameter(Mandatory = true)]
    [ArgumentCompleter(typeof(SetTypeCompleter))]
    public string Type { get; set; } = "";

    [Parameter(Mandatory = true)]
    public string[] Element { get; set; } = [];

    protected override void ProcessRecord()
    {
        try
        {
            var type = SetTypeNames.Parse(Type);
            WriteObject(new NamedSet(Name, type, Element.Select(e => SetElement.Parse(type, e))));
        }
        catch (BpfilterException e)
        {
            ThrowTerminatingError(ErrorRecords.From(e, Name));
        }
    }
}
