using System.Management.Automation;
using Bpfilter.Engine;

namespace Bpfilter;

/// <summary>Turns engine errors into error records whose ids scripts can match: "Bpfilter.&lt;ErrorId&gt;".</summary>
internal static class ErrorRecords
{
    public static ErrorRecord From(BpfilterException exception, object? target)
    {
        var record = new ErrorRecord(exception, "Bpfilter." + exception.ErrorId, Category(exception.Category), target);
        if (exception is Engine.Kernel.VerifierException verifier)
            record.ErrorDetails = new ErrorDetails(exception.Message)
            {
                RecommendedAction = "The full verifier log is in $Error[0].Exception.VerifierLog.",
            };
        return record;
    }

    private static ErrorCategory Category(FailureCategory category) => category switch
    {
        FailureCategory.InvalidArgument => ErrorCategory.InvalidArgument,
        FailureCategory.InvalidData => ErrorCategory.InvalidData,
        FailureCategory.ParserError => ErrorCategory.ParserError,
        FailureCategory.ObjectNotFound => ErrorCategory.ObjectNotFound,
        FailureCategory.PermissionDenied => ErrorCategory.PermissionDenied,
        FailureCategory.ResourceUnavailable => ErrorCategory.ResourceUnavailable,
        FailureCategory.ResourceBusy => ErrorCategory.ResourceBusy,
        FailureCategory.ResourceExists => ErrorCategory.ResourceExists,
        FailureCategory.InvalidOperation => ErrorCategory.InvalidOperation,
        FailureCategory.DeviceError => ErrorCategory.DeviceError,
        FailureCategory.NotImplemented => ErrorCategory.NotImplemented,
        FailureCategory.SecurityError => ErrorCategory.SecurityError,
        _ => ErrorCategory.NotSpecified,
    };
}
