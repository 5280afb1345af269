using System.Collections;
using System.Management.Automation;

namespace Bpfilter;

/// <summary>
/// Refuses a list where a parameter takes one text. Unquoted, SYN,ACK,FIN,RST SYN reaches a cmdlet as a list, which
/// PowerShell would join with spaces into a different condition; the user has to quote it.
/// </summary>
public sealed class SingleTextAttribute(string example) : ArgumentTransformationAttribute
{
    public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
    {
        var value = inputData is PSObject ps ? ps.BaseObject : inputData;
        if (value is IList list)
            throw new ArgumentTransformationMetadataException(
                $"PowerShell read {string.Join(",", list.Cast<object>())} as a list of {list.Count} values: give one text in quotes, such as {example}");
        return inputData;
    }
}
